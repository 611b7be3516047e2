"""placements domain."""
