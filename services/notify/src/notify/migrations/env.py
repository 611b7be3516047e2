"""Alembic environment of the notify service."""

import notify.models  # noqa: F401  (registers every table on the metadata)
from baoxue.migrations import run_env
from notify.database import metadata
from notify.settings import NotifySettings

run_env(metadata, default_url=NotifySettings().resolved_database_url())
