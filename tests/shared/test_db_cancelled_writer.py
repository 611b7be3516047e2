"""A task cancelled inside a write transaction leaves no lock behind.

SQLAlchemy invalidates a connection whose statement was cancelled, and the pool terminates it. On
SQLite, aiosqlite closed it without a rollback while the cancelled statement's cursor was still
referenced (by the ``CancelledError``'s traceback, which the cancelled task keeps): the sqlite3
connection lived on as a "zombie" with its write transaction open, and every other writer got
"database is locked" until the garbage collector freed the cursor. Seen as tests failing at teardown
when the service's relay, consumers or a request were cancelled mid-statement at shutdown. Run on both
databases.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy import text

from baoxue.db import Database
from baoxue.testing.infrastructure import TestInfrastructure


@pytest_asyncio.fixture
async def db(baoxue_infra: TestInfrastructure) -> AsyncIterator[Database]:
    database = Database(baoxue_infra.database_url(f"cancelled_{secrets.token_hex(3)}"))
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        await conn.execute(text("INSERT INTO t VALUES (1, 0)"))
    yield database
    await database.dispose()


def _slow_query(db: Database) -> str:
    if db.dialect == "postgresql":
        return "SELECT pg_sleep(3)"
    return (
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000000) "
        "SELECT count(*) FROM c"
    )


async def _update_without_waiting_long(db: Database) -> None:
    """Update the row the cancelled task wrote, giving up after 2 s of waiting for a lock."""
    pg = db.dialect == "postgresql"
    async with db.engine.connect() as conn:
        await conn.execute(text("SET lock_timeout = '2s'" if pg else "PRAGMA busy_timeout = 2000"))
        await conn.commit()
        try:
            await conn.execute(text("UPDATE t SET n = n + 10 WHERE id = 1"))
            await conn.commit()
        finally:
            await conn.rollback()
            await conn.execute(text("RESET lock_timeout" if pg else "PRAGMA busy_timeout = 10000"))
            await conn.commit()


async def _cancel_inside_a_write(db: Database) -> asyncio.Task[None]:
    wrote = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as s:
            await s.execute(text("UPDATE t SET n = n + 1 WHERE id = 1"))
            wrote.set()
            await s.execute(text(_slow_query(db)))

    task = asyncio.create_task(writer())
    await wrote.wait()
    await asyncio.sleep(0.05)  # inside the slow statement
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled()
    return task  # kept, as a service keeps its cancelled background tasks


async def test_a_writer_cancelled_mid_statement_releases_its_lock(db: Database) -> None:
    task = await _cancel_inside_a_write(db)
    await _update_without_waiting_long(db)
    async with db.transaction() as s:
        assert (await s.execute(text("SELECT n FROM t WHERE id = 1"))).scalar_one() == 10
    assert task.cancelled()


async def test_no_lock_outlives_the_dispose_after_a_cancelled_writer(db: Database) -> None:
    task = await _cancel_inside_a_write(db)
    await db.dispose()
    other = Database(db.url)
    try:
        await _update_without_waiting_long(other)
    finally:
        await other.dispose()
    assert task.cancelled()
