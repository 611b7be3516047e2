"""provincial domain."""
