"""The notify service: its specification for the library's app factory, and ``create_app``."""

from pathlib import Path

from fastapi import FastAPI

from baoxue.app import create_app as create_service_app
from baoxue.service import ServiceSpec
from notify import models as _models  # noqa: F401  (every table in the metadata)
from notify.api import ROUTERS
from notify.codes import CODE_LISTS
from notify.consumers import subscriptions
from notify.database import MECHANISMS, metadata
from notify.deadlines.service import sweep_loop
from notify.delivery.webhooks import delivery_loop
from notify.permissions import POLICY
from notify.pii_columns import ENCRYPTED_COLUMNS
from notify.problems import PROBLEM_TITLES
from notify.settings import NotifySettings

SERVICE = ServiceSpec(
    name="notify",
    title="Baoxue notify (时限、督办与通报)",
    description="Statutory deadlines, the escalation ladder, notices and documents, deliveries, bulletins, scorecards, the blacklist of illegal schooling providers.",
    settings_cls=NotifySettings,
    metadata=metadata,
    tables=MECHANISMS,
    policy=POLICY,
    routers=ROUTERS,
    migrations_dir=Path(__file__).parent / "migrations",
    code_lists=CODE_LISTS,
    subscriptions=subscriptions,
    background=(sweep_loop, delivery_loop),
    problem_titles=PROBLEM_TITLES,
    encrypted_columns=ENCRYPTED_COLUMNS,
)


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    """The ASGI application (``uvicorn --factory notify.main:create_app``)."""
    return create_service_app(SERVICE, settings)
