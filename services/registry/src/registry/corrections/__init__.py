"""Registry domain: corrections."""
