"""The enrollment service: its specification for the library's app factory, and ``create_app``."""

from pathlib import Path

from fastapi import FastAPI

from baoxue.app import create_app as create_service_app
from baoxue.service import ServiceSpec
from enrollment import models as _models  # noqa: F401  (every table on the metadata)
from enrollment.api import ROUTERS
from enrollment.codes import CODE_LISTS
from enrollment.consumers import subscriptions
from enrollment.database import MECHANISMS, metadata
from enrollment.permissions import POLICY
from enrollment.pii_columns import BLIND_INDEX_COLUMNS, ENCRYPTED_COLUMNS
from enrollment.problems import PROBLEM_TITLES
from enrollment.settings import EnrollmentSettings
from enrollment.signals.sweep import sweep_forever
from enrollment.verification.refresh import refresh_forever

SERVICE = ServiceSpec(
    name="enrollment",
    title="Baoxue enrollment (学籍与入学核查)",
    description="Student records (学籍), deferrals and exemptions, placements of disabled children, the September verification and the November comparison.",
    settings_cls=EnrollmentSettings,
    metadata=metadata,
    tables=MECHANISMS,
    policy=POLICY,
    routers=ROUTERS,
    migrations_dir=Path(__file__).parent / "migrations",
    code_lists=CODE_LISTS,
    subscriptions=subscriptions,
    background=(sweep_forever, refresh_forever),
    problem_titles=PROBLEM_TITLES,
    encrypted_columns=ENCRYPTED_COLUMNS,
    blind_index_columns=BLIND_INDEX_COLUMNS,
)


def create_app(settings: EnrollmentSettings | None = None) -> FastAPI:
    """The ASGI application (``uvicorn --factory enrollment.main:create_app``)."""
    return create_service_app(SERVICE, settings)
