"""Registry domain: feeds."""
