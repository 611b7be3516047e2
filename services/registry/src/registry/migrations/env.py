"""Alembic environment of the registry service."""

import registry.models  # noqa: F401  (registers every table on the metadata)
from baoxue.migrations import run_env
from registry.database import metadata
from registry.settings import RegistrySettings

run_env(metadata, default_url=RegistrySettings().resolved_database_url())
