"""Local read models of other services' facts: student records (enrollment), registry status."""
