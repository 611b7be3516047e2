"""``baoxue.db.patient_writes``: on SQLite, work inside it waits for another connection's write lock for
minutes; everything else keeps the short busy timeout (a request answers 503 rather than hang), also on
the same pooled connection afterwards."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, Table, insert
from sqlalchemy.exc import OperationalError

import baoxue.db
from baoxue.db import Database, patient_writes
from baoxue.testing.sqlite_lock import hold_write_lock

SHORT_MS = 150
HOLD_SECONDS = 1.0

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True))


@pytest_asyncio.fixture
async def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Database, Path]]:
    monkeypatch.setattr(baoxue.db, "SQLITE_BUSY_TIMEOUT_MS", SHORT_MS)
    path = tmp_path / "patient.db"
    with sqlite3.connect(path) as conn:  # in WAL mode already, as every Baoxue database is
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")
    database = Database(f"sqlite:///{path}")
    yield database, path
    await database.dispose()


async def _write_while_held(db: Database, path: Path, row: int) -> float:
    """Insert ``row`` while another connection holds the write lock; the seconds it took."""
    holder = hold_write_lock(path, HOLD_SECONDS)
    await asyncio.to_thread(holder.taken.wait, 10)
    started = time.monotonic()
    try:
        async with db.transaction() as session:
            await session.execute(insert(things).values(id=row))
        return time.monotonic() - started
    finally:
        await asyncio.to_thread(holder.join_checked)


async def test_a_plain_transaction_gives_up_after_the_short_busy_timeout(db: tuple[Database, Path]) -> None:
    database, path = db
    started = time.monotonic()
    with pytest.raises(OperationalError, match="database is locked"):
        await _write_while_held(database, path, 1)
    assert time.monotonic() - started < HOLD_SECONDS + 0.5


async def test_patient_work_waits_for_the_lock_and_the_connection_is_short_again_after(
    db: tuple[Database, Path],
) -> None:
    database, path = db
    with patient_writes():
        waited = await _write_while_held(database, path, 1)
    assert waited >= HOLD_SECONDS * 0.8  # it waited for the holder instead of failing after 0.15 s
    # The pool's one connection is handed out again, now to work that is not patient.
    with pytest.raises(OperationalError, match="database is locked"):
        await _write_while_held(database, path, 2)


async def test_tasks_started_inside_patient_work_are_patient(db: tuple[Database, Path]) -> None:
    database, path = db
    with patient_writes():
        task = asyncio.create_task(_write_while_held(database, path, 1))
    assert await task >= HOLD_SECONDS * 0.8
