"""``baoxue.db.hold_transaction_lock``: a transaction that takes a named lock waits for another holding it
until that one ends, on the run's database (PostgreSQL: an advisory lock; SQLite: the write lock taken by a
write that changes nothing). Shared holders on PostgreSQL do not wait for each other."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, Table

from baoxue.db import Database, hold_transaction_lock
from baoxue.testing.infrastructure import TestInfrastructure

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True))


@pytest_asyncio.fixture
async def db(baoxue_infra: TestInfrastructure) -> AsyncIterator[Database]:
    url = baoxue_infra.database_with(f"txlock_{secrets.token_hex(3)}", metadata)
    database = Database(url, pool_size=3)
    yield database
    await database.dispose()


async def _second_waits_for_first(db: Database, *, shared: bool = False) -> bool:
    """Whether a second holder of the lock waited until the first one's transaction ended."""
    first_holds, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        async with db.transaction() as session:
            await hold_transaction_lock(session, "test.lock", shared=shared, sqlite_write_lock_on=things)
            first_holds.set()
            await release.wait()
            order.append("first ends")

    async def second() -> None:
        await first_holds.wait()
        async with db.transaction() as session:
            await hold_transaction_lock(session, "test.lock", shared=shared, sqlite_write_lock_on=things)
            order.append("second holds")

    one, two = asyncio.create_task(first()), asyncio.create_task(second())
    await first_holds.wait()
    await asyncio.sleep(0.3)  # time enough for the second to take the lock if nothing stops it
    release.set()
    await asyncio.gather(one, two)
    return order == ["first ends", "second holds"]


async def test_a_second_holder_waits_until_the_first_transaction_ends(db: Database) -> None:
    assert await _second_waits_for_first(db)


async def test_shared_holders_do_not_wait_for_each_other_on_postgresql(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer: no shared holders")
    assert not await _second_waits_for_first(db, shared=True)
