"""Imports every table module of the registry service so the metadata is complete (for Alembic)."""
