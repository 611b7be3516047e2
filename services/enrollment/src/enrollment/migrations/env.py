"""Alembic environment of the enrollment service."""

import enrollment.models  # noqa: F401  (registers every table on the metadata)
from baoxue.migrations import run_env
from enrollment.database import metadata
from enrollment.settings import EnrollmentSettings

run_env(metadata, default_url=EnrollmentSettings().resolved_database_url())
