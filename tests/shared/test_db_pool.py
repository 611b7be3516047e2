"""PostgreSQL pool: a connection is pinged at checkout only after it sat idle, not on every checkout.

Shown with a real dead connection: its server process is terminated while it waits in the pool. Idle
for longer than the threshold, the ping finds it dead and the caller gets a new connection; used just
now, it is not pinged, so its first statement fails (a request would answer 503), the pool drops it,
and the next transaction works without a restart.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from baoxue.db import Database, sync_url
from baoxue.testing.infrastructure import TestInfrastructure

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="PostgreSQL pool behaviour (SQLite has no pre-ping)"
)


@pytest_asyncio.fixture
async def make_db(baoxue_infra: TestInfrastructure) -> AsyncIterator[Callable[[float], Database]]:
    url = baoxue_infra.database_url(f"pool_{secrets.token_hex(3)}")
    made: list[Database] = []

    def make(idle_seconds: float) -> Database:
        db = Database(url, pool_size=1, ping_idle_seconds=idle_seconds)
        made.append(db)
        return db

    yield make
    for db in made:
        await db.dispose()


async def _backend_pid(db: Database) -> int:
    async with db.transaction() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


def _terminate(db: Database, pid: int) -> None:
    admin = create_engine(make_url(sync_url(db.url)), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            assert c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
            for _ in range(100):
                alive = c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid})
                if alive.scalar_one() == 0:
                    return
                time.sleep(0.05)
        raise AssertionError("the backend did not go away")
    finally:
        admin.dispose()


async def test_an_idle_dead_connection_is_pinged_and_replaced(make_db: Callable[[float], Database]) -> None:
    db = make_db(0.2)
    pid = await _backend_pid(db)
    await asyncio.to_thread(_terminate, db, pid)
    await asyncio.sleep(0.3)  # longer than the idle threshold
    assert await _backend_pid(db) != pid  # no error: the ping found it dead, a new connection answered


async def test_a_recently_used_connection_is_not_pinged_and_recovers_after_one_failure(
    make_db: Callable[[float], Database],
) -> None:
    db = make_db(60.0)
    pid = await _backend_pid(db)
    assert await _backend_pid(db) == pid  # the same pooled connection, reused
    await asyncio.to_thread(_terminate, db, pid)
    with pytest.raises(DBAPIError) as failed:  # not pinged: the statement meets the dead connection
        await _backend_pid(db)
    assert failed.value.connection_invalidated
    assert await _backend_pid(db) != pid  # the pool dropped it; the next transaction reconnects


async def test_a_burst_beyond_the_pool_waits_for_its_connections_instead_of_opening_more(
    baoxue_infra: TestInfrastructure,
) -> None:
    """Twelve concurrent statements on a pool of two: they take turns on the same two backends. With
    overflow connections, each burst forked new backends and closed them again at check-in, a fork per
    request under sustained load (B4, bench/notes/b4.md)."""
    db = Database(baoxue_infra.database_url(f"pool_{secrets.token_hex(3)}"), pool_size=2)
    try:

        async def backend_after_a_pause() -> int:
            async with db.autocommit() as conn:
                pid = int(
                    (await conn.execute(text("SELECT pg_backend_pid() FROM pg_sleep(0.05)"))).scalar_one()
                )
            return pid

        rounds = [await asyncio.gather(*(backend_after_a_pause() for _ in range(12))) for _ in range(3)]
        backends = {pid for pids in rounds for pid in pids}
        assert len(backends) == 2, backends  # the same two, through three bursts of six times the pool
    finally:
        await db.dispose()
