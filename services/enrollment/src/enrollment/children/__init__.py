"""children domain."""
