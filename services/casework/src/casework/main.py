"""The casework service: its specification for the library's app factory, and ``create_app``."""

from pathlib import Path

from fastapi import FastAPI

from baoxue.app import create_app as create_service_app
from baoxue.db import begin_immediate_on_sqlite
from baoxue.service import ServiceSpec
from casework import models as _models  # noqa: F401  (every table on the metadata)
from casework.api import ROUTERS
from casework.cases.reports import overdue_sweep
from casework.codes import CODE_LISTS
from casework.consumers import subscriptions
from casework.database import MECHANISMS, metadata
from casework.permissions import POLICY
from casework.pii_columns import BLIND_INDEX_COLUMNS, ENCRYPTED_COLUMNS
from casework.problems import PROBLEM_TITLES
from casework.settings import CaseworkSettings

SERVICE = ServiceSpec(
    name="casework",
    title="Baoxue casework (劝返与家访)",
    description="Dropout cases (一人一案), persuasion log, dropout reports, closure, home visits, special-needs census and support plans.",
    settings_cls=CaseworkSettings,
    metadata=metadata,
    tables=MECHANISMS,
    policy=POLICY,
    routers=ROUTERS,
    migrations_dir=Path(__file__).parent / "migrations",
    code_lists=CODE_LISTS,
    subscriptions=subscriptions,
    background=[overdue_sweep],
    on_startup=[begin_immediate_on_sqlite],
    problem_titles=PROBLEM_TITLES,
    encrypted_columns=ENCRYPTED_COLUMNS,
    blind_index_columns=BLIND_INDEX_COLUMNS,
)


def create_app(settings: CaseworkSettings | None = None) -> FastAPI:
    """The ASGI application (``uvicorn --factory casework.main:create_app``)."""
    return create_service_app(SERVICE, settings)
