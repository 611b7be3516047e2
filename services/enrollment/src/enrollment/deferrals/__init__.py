"""deferrals domain."""
