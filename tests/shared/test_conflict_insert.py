"""``baoxue.db.conflict_insert``: an ``INSERT … ON CONFLICT`` in the run's database dialect, from a session
or a dialect name, run against the run's database (PostgreSQL or SQLite)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from baoxue.db import Database, conflict_insert
from baoxue.testing.infrastructure import TestInfrastructure

metadata = MetaData()
counters = Table(
    "counters", metadata, Column("name", String(20), primary_key=True), Column("n", Integer, nullable=False)
)


@pytest_asyncio.fixture
async def db(baoxue_infra: TestInfrastructure) -> AsyncIterator[Database]:
    url = baoxue_infra.database_with(f"upsert_{secrets.token_hex(3)}", metadata)
    database = Database(url, pool_size=2)
    yield database
    await database.dispose()


def test_the_construct_follows_the_dialect_name() -> None:
    assert isinstance(conflict_insert("postgresql", counters), postgresql.Insert)
    assert isinstance(conflict_insert("sqlite", counters), sqlite.Insert)


async def test_do_nothing_and_do_update_on_the_runs_database(db: Database) -> None:
    async with db.transaction() as session:
        first = conflict_insert(session, counters).values(name="a", n=1).on_conflict_do_nothing()
        await session.execute(first)
        await session.execute(first)  # the same key again: nothing, no error
        bump = conflict_insert(db.dialect, counters).values(name="a", n=5)
        await session.execute(
            bump.on_conflict_do_update(index_elements=["name"], set_={"n": counters.c.n + bump.excluded.n})
        )
    async with db.transaction() as session:
        assert (await session.execute(select(counters.c.name, counters.c.n))).all() == [("a", 6)]
