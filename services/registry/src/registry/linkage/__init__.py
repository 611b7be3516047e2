"""Registry domain: linkage."""
