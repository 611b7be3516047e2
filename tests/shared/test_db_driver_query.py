"""``Database.fetch_one``: a statement compiled once and run on the PostgreSQL driver itself gives the
same row as SQLAlchemy, commits on its own (autocommit: a data-modifying CTE's write is there when it
returns), and maps driver errors onto SQLAlchemy's (a lost connection is invalidated, not pooled).

PostgreSQL only (the run's database with TEST_DATABASE_URL); skipped on the embedded SQLite.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import (
    JSON,
    Column,
    Date,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, OperationalError

from baoxue.db import Database, UTCDateTime, create_engine
from baoxue.testing.infrastructure import TestInfrastructure

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("on", Date),
    Column("at", UTCDateTime),
    Column("tags", JSON),
)
reads = Table("reads", metadata, Column("id", Integer, primary_key=True), Column("thing", String(36)))


@pytest_asyncio.fixture
async def db(baoxue_infra: TestInfrastructure) -> AsyncIterator[Database]:
    url = baoxue_infra.database_url(f"driverq_{secrets.token_hex(3)}")
    if not url.startswith("postgresql"):
        pytest.skip("the driver path is PostgreSQL's")
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            insert(things),
            [
                {
                    "id": "a",
                    "n": 1,
                    "on": dt.date(2026, 9, 1),
                    "at": dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
                    "tags": ["家访", "x"],
                },
                {"id": "b", "n": 2, "on": None, "at": None, "tags": None},
            ],
        )
    await engine.dispose()
    database = Database(url, pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()


def _read_and_log() -> Select[Any]:
    """A read that logs itself, as the case read does: the row, and an INSERT as a data-modifying CTE."""
    found = select(things).where(things.c.id == bindparam("id", type_=String())).cte("found")
    logged = (
        insert(reads)
        .from_select(
            ["thing"], select(found.c.id).select_from(found).having(func.count() > 0).group_by(found.c.id)
        )
        .cte("logged")
    )
    return select(found).add_cte(logged)


async def test_the_same_row_as_sqlalchemy_and_the_write_is_committed(db: Database) -> None:
    statement = _read_and_log()
    query = db.driver_query(statement)
    assert db.driver_query(statement) is query  # compiled once per statement
    async with db.autocommit() as conn:
        expected = (await conn.execute(statement, {"id": "a"})).mappings().one()
    row = await db.fetch_one(query, {"id": "a"})
    assert row == dict(expected)
    assert row["at"] == dt.datetime(2026, 9, 1, 0, 0, tzinfo=dt.UTC) and row["at"].tzinfo is dt.UTC
    assert row["tags"] == ["家访", "x"] and row["on"] == dt.date(2026, 9, 1)
    assert await db.fetch_one(query, {"id": "b"}) == {"id": "b", "n": 2, "on": None, "at": None, "tags": None}
    assert await db.fetch_one(query, {"id": "missing"}) is None
    async with db.transaction() as session:  # another connection sees the writes: they committed
        logged = (await session.execute(select(reads.c.thing).order_by(reads.c.id))).scalars().all()
    assert logged == ["a", "a", "b"]  # one per found row (SQLAlchemy's, then the driver's), none for a miss


async def test_driver_errors_are_sqlalchemys_and_a_lost_connection_is_not_pooled(db: Database) -> None:
    query = db.driver_query(select(things.c.id).where(things.c.n == bindparam("n", type_=Integer())))
    with pytest.raises(DBAPIError):  # a value the column cannot take: the driver's DataError, wrapped
        await db.fetch_one(query, {"n": 2**40})
    assert await db.fetch_one(query, {"n": 2}) == {"id": "b"}  # the connection went back usable

    victim = await db.fetch_one(db.driver_query(select(func.pg_backend_pid().label("pid"))), {})
    assert victim is not None
    async with db.engine.connect() as conn:  # kill the pooled connection's backend from another pool's
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim["pid"]})
    with pytest.raises(OperationalError) as raised:
        await db.fetch_one(query, {"n": 2})
    assert raised.value.connection_invalidated
    assert await db.fetch_one(query, {"n": 1}) == {"id": "a"}  # a new connection, not the dead one


async def test_only_postgresql_has_an_autocommit_pool_of_its_own(tmp_path: object) -> None:
    sqlite = Database(f"sqlite:///{tmp_path}/a.db")
    postgresql = Database("postgresql://nobody@127.0.0.1:1/none")  # no connection is made
    try:
        assert sqlite.engines == (sqlite.engine,)  # autocommit() is an execution option on its one pool
        assert len(postgresql.engines) == 2 and postgresql.engines[0] is postgresql.engine
    finally:
        await sqlite.dispose()
        await postgresql.dispose()


async def test_an_unreachable_database_is_sqlalchemys_operational_error() -> None:
    """So the problem handlers answer 503 ``service_unavailable``, as for any statement."""
    db = Database("postgresql://nobody@127.0.0.1:1/none")  # nothing listens on port 1
    try:
        with pytest.raises(OperationalError):
            await db.fetch_one(db.driver_query(select(things.c.id)), {})
    finally:
        await db.dispose()
