"""Imports every table module of the notify service so the metadata is complete (for Alembic)."""
