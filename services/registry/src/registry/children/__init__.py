"""Registry domain: children."""
