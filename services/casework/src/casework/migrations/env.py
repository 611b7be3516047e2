"""Alembic environment of the casework service."""

import casework.models  # noqa: F401  (registers every table on the metadata)
from baoxue.migrations import run_env
from casework.database import metadata
from casework.settings import CaseworkSettings

run_env(metadata, default_url=CaseworkSettings().resolved_database_url())
