"""Registry domain: calendar."""
