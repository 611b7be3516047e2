"""A savepoint never commits on its own: the transaction around it commits or rolls back as a whole.

On SQLite the driver opens a transaction only before INSERT/UPDATE/DELETE; a SAVEPOINT issued before
the first write began one itself, and its RELEASE committed it, so a request that failed afterwards
(and answered 503 "nothing was saved") had saved the savepoint's rows. Run on both databases.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text

from baoxue.db import Database
from baoxue.testing.infrastructure import TestInfrastructure


@pytest_asyncio.fixture
async def db(baoxue_infra: TestInfrastructure) -> AsyncIterator[Database]:
    database = Database(baoxue_infra.database_url(f"savepoint_{secrets.token_hex(3)}"))
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    yield database
    await database.dispose()


async def _ids(db: Database) -> list[int]:
    async with db.transaction() as s:
        return [r[0] for r in (await s.execute(text("SELECT id FROM t ORDER BY id"))).all()]


class Boom(Exception):
    pass


async def test_a_failure_after_a_released_savepoint_rolls_everything_back(db: Database) -> None:
    with pytest.raises(Boom):
        async with db.transaction() as s:
            await s.execute(text("SELECT count(*) FROM t"))  # a read first: no write yet
            async with s.begin_nested():
                await s.execute(text("INSERT INTO t VALUES (1)"))
            await s.execute(text("INSERT INTO t VALUES (2)"))
            raise Boom
    assert await _ids(db) == []


async def test_savepoints_commit_with_their_transaction(db: Database) -> None:
    async with db.transaction() as s:
        async with s.begin_nested():
            await s.execute(text("INSERT INTO t VALUES (1)"))
        with pytest.raises(Boom):
            async with s.begin_nested():  # rolled back alone, the transaction goes on
                await s.execute(text("INSERT INTO t VALUES (2)"))
                raise Boom
        async with s.begin_nested():  # a savepoint after a write: the transaction is open already
            await s.execute(text("INSERT INTO t VALUES (3)"))
        assert await _ids(db) == []  # nothing visible to others before the commit
    assert await _ids(db) == [1, 3]
