"""Alembic, the same way for every service.

Each service keeps its revisions in ``src/<service>/migrations/versions`` with an ``env.py`` that calls
:func:`run_env`. ``baoxue migrate`` and the test fixtures call :func:`upgrade` programmatically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, create_engine, pool

from baoxue.db import sync_url


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    """An Alembic configuration for one service's migrations against ``database_url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (creating the SQLite file's folder if needed)."""
    url = sync_url(database_url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def run_env(metadata: MetaData, default_url: str) -> None:
    """The body of every service's ``env.py``: online migrations, batch mode on SQLite.

    ``default_url`` (the service's configured database) is used when Alembic was started from the
    service's ``alembic.ini`` rather than by :func:`upgrade`.
    """
    config = context.config
    url = config.get_main_option("sqlalchemy.url") or sync_url(default_url)
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, render_as_batch=True, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)  # type: ignore[arg-type]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object_for(connection),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def include_object_for(connection: Connection) -> Callable[..., bool]:
    """Alembic's ``include_object`` for ``connection``'s database: the PostgreSQL partitions a service
    creates at run time (e.g. one per verification campaign) are not models, so autogenerate must
    neither drop them nor report them."""
    partitions: set[str] | None = None  # read on first use: only autogenerate asks, never an upgrade

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        nonlocal partitions
        if not (type_ == "table" and reflected):
            return True
        if partitions is None:
            partitions = set()
            if connection.dialect.name == "postgresql":
                rows = connection.exec_driver_sql("SELECT relname FROM pg_class WHERE relispartition")
                partitions = {row[0] for row in rows}
        return name not in partitions

    return include_object
