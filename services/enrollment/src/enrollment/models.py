"""Imports every table module of the enrollment service so the metadata is complete (for Alembic)."""
