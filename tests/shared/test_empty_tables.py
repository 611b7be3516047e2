"""The test plugin's table emptying rides out a SQLite file that another connection holds locked.

On SQLite (WAL, as the services run it) in a file of the test's own, whichever database the run uses:
another connection holds the write lock longer than the cleanup's busy timeout; the cleanup retries
and empties the tables once the lock goes, and still raises when the lock outlasts every try.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, func, insert, select
from sqlalchemy.exc import OperationalError

from baoxue.db import Database
from baoxue.testing.plugin import empty_tables, empty_tables_off_loop
from baoxue.testing.sqlite_lock import WriteLockHolder, hold_write_lock


def _database(tmp_path: Path) -> tuple[str, MetaData, Table]:
    path = tmp_path / "cleanup.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    metadata = MetaData()
    table = Table("things", metadata, Column("id", Integer, primary_key=True))
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as c:
        c.execute(insert(table), [{"id": i} for i in range(10)])
    engine.dispose()
    return url, metadata, table


def _count(url: str, table: Table) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def _locked_for(url: str, seconds: float) -> WriteLockHolder:
    holder = hold_write_lock(url.removeprefix("sqlite:///"), seconds, exclusive=True)
    assert holder.taken.wait(5)
    return holder


def test_a_lock_held_past_the_busy_timeout_is_waited_out(tmp_path: Path) -> None:
    url, metadata, table = _database(tmp_path)
    holder = _locked_for(url, 1.0)
    started = time.monotonic()
    empty_tables(url, metadata, busy_timeout=0.2, attempts=5, pause=0.2)
    holder.join_checked()
    assert time.monotonic() - started >= 0.9  # it did wait for the lock (longer than one busy timeout)
    assert _count(url, table) == 0


def test_a_lock_outlasting_every_try_is_raised(tmp_path: Path) -> None:
    url, metadata, table = _database(tmp_path)
    holder = _locked_for(url, 2.5)
    with pytest.raises(OperationalError, match="database is locked"):
        empty_tables(url, metadata, busy_timeout=0.1, attempts=3, pause=0.1)
    holder.join_checked()
    assert _count(url, table) == 10  # nothing half-emptied


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    url, _metadata, _table = _database(tmp_path)
    missing = MetaData()
    Table("not_there", missing, Column("id", Integer, primary_key=True))
    started = time.monotonic()
    with pytest.raises(OperationalError, match="no such table"):
        empty_tables(url, missing, busy_timeout=0.1, attempts=5, pause=1.0)
    assert time.monotonic() - started < 1.0


async def test_a_lock_held_by_a_task_of_the_same_event_loop_is_waited_out(tmp_path: Path) -> None:
    """A lingering service task holds the write lock and needs the loop to finish: emptied off the loop,
    the task commits and the cleanup goes through; on the loop (the old teardown) it cannot."""
    url, metadata, table = _database(tmp_path)
    db = Database(url)
    held, release_after = asyncio.Event(), 0.5

    async def lingering_writer() -> None:
        async with db.transaction() as session:
            await session.execute(insert(table).values(id=100))
            held.set()
            await asyncio.sleep(release_after)  # needs the loop to get past this

    try:
        task = asyncio.create_task(lingering_writer())
        await held.wait()
        with pytest.raises(OperationalError, match="database is locked"):  # blocking the loop: no way out
            empty_tables(url, metadata, busy_timeout=0.3, attempts=2, pause=0.5)
        assert not task.done()

        await empty_tables_off_loop(url, metadata, busy_timeout=0.3, attempts=5, pause=0.2)
        await task
        assert _count(url, table) == 0  # the writer's row too: it committed before the cleanup ran
    finally:
        await db.dispose()
