"""signals domain."""
