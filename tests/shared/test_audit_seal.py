"""The audit sealer writes a batch's chain links in one statement, and the chain it writes verifies.

Runs on the run's database (SQLite by default, PostgreSQL with TEST_DATABASE_URL), on a table of its
own, without a running service (whose own sealer would race the test's).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from sqlalchemy import MetaData, event, func, select, update

from baoxue.audit import GENESIS, AuditLog, define_audit_table
from baoxue.auth.principal import Principal
from baoxue.db import Database, create_engine
from baoxue.testing.infrastructure import TestInfrastructure

WORKER = Principal(
    subject="u-seal", roles=frozenset({"school"}), org="37040600101001", scope="37040600101001"
)


@dataclass
class Sealing:
    db: Database
    audit: AuditLog
    statements: list[tuple[str, bool]]  # (SQL, executemany) of every cursor call


@pytest_asyncio.fixture
async def sealing(baoxue_infra: TestInfrastructure) -> AsyncIterator[Sealing]:
    url = baoxue_infra.database_url(f"auditseal_{secrets.token_hex(3)}")
    metadata = MetaData()
    table = define_audit_table(metadata)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await engine.dispose()
    db = Database(url, pool_size=2)
    statements: list[tuple[str, bool]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, many: bool) -> None:
        statements.append((statement, many))

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield Sealing(db, AuditLog(table), statements)
    finally:
        await db.dispose()


async def _append(s: Sealing, n: int, start: int = 0) -> None:
    async with s.db.transaction() as session:
        for i in range(start, start + n):
            await s.audit.record(session, WORKER, "read", "case", [f"case-{i}"], purpose="家访前核对")


def _updates(s: Sealing) -> list[tuple[str, bool]]:
    return [(sql, many) for sql, many in s.statements if sql.lstrip().upper().startswith("UPDATE")]


async def test_a_batch_is_sealed_with_one_update_and_the_chain_verifies(sealing: Sealing) -> None:
    await _append(sealing, 1203)
    sealing.statements.clear()
    assert await sealing.audit.seal(sealing.db, batch=500) == 500
    updates = _updates(sealing)
    assert len(updates) == 1, updates  # one statement for 500 entries, not one per entry
    if sealing.db.dialect == "postgresql":
        assert "FROM unnest(" in updates[0][0] and not updates[0][1]  # four array parameters
    else:
        assert updates[0][1]  # one executemany

    assert await sealing.audit.seal(sealing.db, batch=500) == 500
    await _append(sealing, 10, start=1203)  # appended between batches: chained after the older ones
    assert await sealing.audit.seal(sealing.db, batch=500) == 213
    assert await sealing.audit.seal(sealing.db, batch=500) == 0
    assert len(_updates(sealing)) == 3
    if sealing.db.dialect == "postgresql":  # the same statement for every batch: compiled once, prepared
        assert len({sql for sql, _ in _updates(sealing)}) == 1

    report = await sealing.audit.verify_chain(sealing.db)
    assert report.intact and report.entries == 1213 and report.unsealed == 0
    head = await sealing.audit.head(sealing.db)
    assert head is not None and head[0] == 1213
    assert (await sealing.audit.verify_chain(sealing.db, anchor=head)).intact

    t = sealing.audit.table
    async with sealing.db.transaction() as session:
        rows = (
            await session.execute(
                select(t.c.position, t.c.chain_index, t.c.prev_hash, t.c.hash).order_by(t.c.position)
            )
        ).all()
    assert [r.chain_index for r in rows] == list(range(1, 1214))  # in position order, no gap
    assert rows[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(rows))
    assert len({r.hash for r in rows}) == 1213


async def test_an_entry_edited_after_a_batched_seal_is_found(sealing: Sealing) -> None:
    await _append(sealing, 40)
    assert await sealing.audit.seal(sealing.db) == 40
    t = sealing.audit.table
    async with sealing.db.transaction() as session:
        position = (await session.execute(select(t.c.position).where(t.c.chain_index == 17))).scalar_one()
        await session.execute(update(t).where(t.c.position == position).values(resource_ids="case-x"))
    report = await sealing.audit.verify_chain(sealing.db)
    assert not report.intact and report.first_broken_position == position
    async with sealing.db.transaction() as session:
        assert (await session.execute(select(func.count()).where(t.c.hash.is_(None)))).scalar_one() == 0


async def test_an_empty_field_edited_to_the_text_none_is_found(sealing: Sealing) -> None:
    async with sealing.db.transaction() as session:  # an entry whose purpose and detail are empty
        await sealing.audit.record(session, WORKER, "read", "case", ["case-1"])
    await _append(sealing, 2, start=2)
    assert await sealing.audit.seal(sealing.db) == 3
    t = sealing.audit.table
    async with sealing.db.transaction() as session:
        await session.execute(update(t).where(t.c.chain_index == 1).values(purpose="None", detail="None"))
    report = await sealing.audit.verify_chain(sealing.db)
    assert not report.intact and report.entries == 1
