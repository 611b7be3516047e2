"""Imports every table module of the casework service so the metadata is complete (for Alembic)."""
