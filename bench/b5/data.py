"""B5's data: realistic ``ChildRegistered`` events, and one service's database (its event tables and the
consumer's effect table)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, select, text

from baoxue.contracts.registry import ChildRegistered
from baoxue.db import Database, sync_url
from baoxue.events.tables import EventTables, define_event_tables

TOWNS = ("370406001", "370406002", "370406101", "370406102", "370406103", "370406104")


def make_events(count: int, seed: str) -> list[ChildRegistered]:
    """``count`` realistic ``ChildRegistered`` events (surrogate ids and blind indexes, no personal data)."""
    born = dt.date(2012, 9, 1)
    events = []
    for n in range(count):
        digest = hashlib.sha256(f"{seed}:{n}".encode()).hexdigest()
        town = TOWNS[n % len(TOWNS)]
        events.append(
            ChildRegistered(
                child_id=f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}",
                id_blind_index=digest,
                birth_date=born + dt.timedelta(days=n % 3000),
                sex="M" if n % 2 else "F",
                hukou_town=town,
                hukou_village=f"{town}{200 + n % 30:03d}",
                hukou_school_district=f"{town}01",
                categories=["left_behind"] if n % 7 == 0 else [],
                status="active",
                sources=["police", "education"],
            )
        )
    return events


@dataclass
class Side:
    """One service's database: its event tables and the consumer's effect table."""

    db: Database
    tables: EventTables
    effects: Table


def define_side(url: str, *, create: bool = True) -> Side:
    metadata = MetaData()
    tables = define_event_tables(metadata)
    effects = Table(
        "child_effects",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("child_id", String(36), nullable=False),
        Column("hukou_town", String(12)),
        Column("status", String(20), nullable=False),
        Column("sequence", Integer, nullable=False),
    )
    if create:
        engine = create_engine(sync_url(url))
        metadata.create_all(engine)
        engine.dispose()
    return Side(Database(url, pool_size=20), tables, effects)


async def empty(side: Side) -> None:
    names = ["outbox", "inbox", "dead_letter", "child_effects"]
    async with side.db.transaction() as session:
        if side.db.dialect == "postgresql":
            await session.execute(text("TRUNCATE " + ", ".join(names) + " RESTART IDENTITY"))
        else:
            for name in names:
                await session.execute(text(f"DELETE FROM {name}"))


async def effect_counts(side: Side) -> tuple[int, int]:
    """(rows, distinct children) in the consumer's effect table."""
    e = side.effects
    async with side.db.transaction() as session:
        total = (await session.execute(select(func.count()).select_from(e))).scalar_one()
        distinct = (await session.execute(select(func.count(func.distinct(e.c.child_id))))).scalar_one()
    return int(total), int(distinct)
