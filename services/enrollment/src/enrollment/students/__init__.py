"""students domain."""
