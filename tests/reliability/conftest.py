"""Fault-injection fixtures: a probe database with the library's event tables and an effects table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar

import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.db import Database, sync_url
from baoxue.events.consumer import ReceivedEvent
from baoxue.events.envelope import EventData
from baoxue.events.outbox import Outbox
from baoxue.events.tables import EventTables, define_event_tables


class ChaosHappened(EventData):
    """A test-only contract on the registry stream of the test's namespace."""

    service: ClassVar[str] = "registry"
    aggregate: ClassVar[str] = "chaos"
    event: ClassVar[str] = "happened"
    n: int


def probe_metadata() -> tuple[MetaData, EventTables, Table]:
    metadata = MetaData()
    tables = define_event_tables(metadata)
    # No unique key on n: a second application of one event shows up as a second row.
    effects = Table(
        "effects",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("n", Integer),
        Column("by", String(40)),
    )
    return metadata, tables, effects


@dataclass
class Probe:
    url: str
    db: Database
    tables: EventTables
    effects: Table

    async def write(self, numbers: range) -> None:
        outbox = Outbox(self.tables)
        async with self.db.transaction() as session:
            await outbox.add_many(session, [(ChaosHappened(n=n), f"chaos-{n}", 1) for n in numbers])

    async def effects_of(self) -> list[int]:
        async with self.db.transaction() as s:
            return [int(r[0]) for r in (await s.execute(select(self.effects.c.n))).all()]

    async def count(self) -> int:
        async with self.db.transaction() as s:
            return int((await s.execute(select(func.count()).select_from(self.effects))).scalar_one())


def effect_handler(effects: Table, by: str = "consumer"):
    async def handle(session: AsyncSession, event: ReceivedEvent[ChaosHappened]) -> None:
        await session.execute(insert(effects).values(n=event.data.n, by=by))

    return handle


def check_history(expected: range, applied: list[int]) -> dict[str, int]:
    """Jepsen-style checker: lost (expected, never applied), duplicates (applied twice), unexpected."""
    seen: dict[int, int] = {}
    for n in applied:
        seen[n] = seen.get(n, 0) + 1
    want = set(expected)
    return {
        "expected": len(want),
        "applied": len(applied),
        "lost": len(want - set(seen)),
        "duplicates": sum(c - 1 for c in seen.values() if c > 1),
        "unexpected": len(set(seen) - want),
    }


@pytest_asyncio.fixture
async def probe(baoxue_infra, request) -> AsyncIterator[Probe]:
    metadata, tables, effects = probe_metadata()
    url = baoxue_infra.database_url(f"chaos{abs(hash(request.node.nodeid)) % 10**8}")
    engine = create_engine(sync_url(url))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    engine.dispose()
    db = Database(url)
    yield Probe(url, db, tables, effects)
    await db.dispose()
