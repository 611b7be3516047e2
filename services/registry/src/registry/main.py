"""The registry service: its specification for the library's app factory, and ``create_app``."""

from pathlib import Path

from fastapi import FastAPI

from baoxue.app import create_app as create_service_app
from baoxue.service import ServiceSpec
from registry.api import ROUTERS
from registry.codes import CODE_LISTS
from registry.consumers import subscriptions
from registry.database import MECHANISMS, metadata
from registry.feeds.service import resume_feed_job, sweep_spool_at_start_up
from registry.permissions import POLICY
from registry.pii_columns import BLIND_INDEX_COLUMNS, ENCRYPTED_COLUMNS
from registry.problems import PROBLEM_TITLES
from registry.settings import RegistrySettings

SERVICE = ServiceSpec(
    name="registry",
    title="Baoxue registry (基础数据库)",
    description="The basic information database of school-age children: department feeds, merged child records with provenance, record linkage, hukou corrections, feed calendar.",
    settings_cls=RegistrySettings,
    metadata=metadata,
    tables=MECHANISMS,
    policy=POLICY,
    routers=ROUTERS,
    migrations_dir=Path(__file__).parent / "migrations",
    code_lists=CODE_LISTS,
    subscriptions=subscriptions,
    problem_titles=PROBLEM_TITLES,
    encrypted_columns=ENCRYPTED_COLUMNS,
    blind_index_columns=BLIND_INDEX_COLUMNS,
    # A feed batch acknowledged with 202 whose process died is applied again at start-up.
    job_resumers={"feed_commit": resume_feed_job, "feed_validate": resume_feed_job},
    # Spooled submissions nothing will read again (final batches, orphans) are deleted at start-up.
    on_startup=(sweep_spool_at_start_up,),
)


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The ASGI application (``uvicorn --factory registry.main:create_app``)."""
    return create_service_app(SERVICE, settings)
