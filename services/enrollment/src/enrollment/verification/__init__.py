"""verification domain."""
