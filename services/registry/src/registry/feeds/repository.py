"""Queries of feed batches and staged rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.db import hold_transaction_lock
from registry.children.models import Child
from registry.feeds.models import FeedBatch, FeedRow

_batches = FeedBatch.__table__  # type: ignore[attr-defined]
_rows = FeedRow.__table__  # type: ignore[attr-defined]


async def lock_submissions(session: AsyncSession, department: str) -> None:
    """Serialise the submissions of one department until the end of the transaction.

    Two requests carrying the same batch at the same moment would otherwise both find no earlier batch
    and both create one. On SQLite the database's write lock is taken before the look-up; a second
    transaction waits for it (busy timeout) and then sees the first batch.
    """
    await hold_transaction_lock(
        session, f"registry.feed_submission:{department}", sqlite_write_lock_on=_batches
    )


async def lock_merges(session: AsyncSession) -> None:
    """Serialise the merges of batches until the end of the transaction, whatever their department.

    Two departments' batches naming the same new child, merged at the same moment, would both find no
    child for its ID number and both register one: the second fails on the unique blind index and its
    whole batch with it. Validation and staging still run in parallel; only the merge waits, and it
    then sees the child the other registered (on SQLite its first read is already under the write lock).
    """
    await hold_transaction_lock(session, "registry.feed_merge", sqlite_write_lock_on=_batches)


async def find_repeat(
    session: AsyncSession,
    *,
    department: str,
    period: str,
    mode: str,
    content_hash: str,
    client_batch_id: str | None,
) -> dict[str, Any] | None:
    """An earlier batch this submission repeats: same client batch id, or (commit) the same content."""
    if client_batch_id:
        row = (
            (
                await session.execute(
                    select(_batches).where(
                        _batches.c.department == department,
                        _batches.c.client_batch_id == client_batch_id,
                        _batches.c.mode == mode,
                    )
                )
            )
            .mappings()
            .first()
        )
        if row is not None:
            return dict(row)
    if mode != "commit":
        return None
    row = (
        (
            await session.execute(
                select(_batches)
                .where(
                    _batches.c.department == department,
                    _batches.c.period == period,
                    _batches.c.mode == "commit",
                    _batches.c.content_hash == content_hash,
                    _batches.c.status != "failed",
                )
                .order_by(_batches.c.submitted_at)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def insert_batch(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(_batches).values(**values))


async def batch_of_job(session: AsyncSession, job_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(_batches).where(_batches.c.job_id == job_id))).mappings().first()
    return dict(row) if row is not None else None


async def staged_count(session: AsyncSession, batch_id: str) -> int:
    query = select(func.count()).select_from(_rows).where(_rows.c.batch_id == batch_id)
    return int((await session.execute(query)).scalar_one())


async def set_job(session: AsyncSession, batch_id: str, job_id: str) -> None:
    """Record the job now applying a batch (it is found from the batch resource)."""
    await session.execute(update(_batches).where(_batches.c.id == batch_id).values(job_id=job_id))


async def mark_interrupted(session: AsyncSession, batch_id: str, code: str) -> None:
    """A batch that is not final and that no process can apply now (it stays to be applied)."""
    await session.execute(
        update(_batches)
        .where(_batches.c.id == batch_id, _batches.c.status.not_in(("completed", "validated", "failed")))
        .values(status="interrupted", error_code=code)
    )


async def statuses(session: AsyncSession, batch_ids: Sequence[str]) -> dict[str, str]:
    """The status of each of ``batch_ids`` that exists."""
    if not batch_ids:
        return {}
    query = select(_batches.c.id, _batches.c.status).where(_batches.c.id.in_(list(batch_ids)))
    return {row.id: row.status for row in (await session.execute(query)).all()}


async def get_batch(session: AsyncSession, batch_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(_batches).where(_batches.c.id == batch_id))).mappings().first()
    return dict(row) if row is not None else None


async def list_batches(
    session: AsyncSession,
    *,
    departments: Sequence[str] | None,
    period: str | None,
    after: tuple[dt.datetime, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    query = select(_batches).order_by(_batches.c.submitted_at.desc(), _batches.c.id.desc()).limit(limit + 1)
    if departments is not None:
        query = query.where(_batches.c.department.in_(departments))
    if period:
        query = query.where(_batches.c.period == period)
    if after:
        at, ident = after
        query = query.where(
            (_batches.c.submitted_at < at) | ((_batches.c.submitted_at == at) & (_batches.c.id < ident))
        )
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def rows_with_reasons(session: AsyncSession, batch_id: str) -> list[dict[str, Any]]:
    """The staged rows of a batch that carry reason codes (every column: a row without ``raw_cipher``
    is shown from its staged values)."""
    query = (
        select(_rows).where(_rows.c.batch_id == batch_id, _rows.c.reasons != "").order_by(_rows.c.row_number)
    )
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def delivered_batches(session: AsyncSession, periods: Sequence[str]) -> list[dict[str, Any]]:
    """The completed commit batches of the periods, in the order they completed."""
    query = (
        select(_batches)
        .where(_batches.c.period.in_(periods), _batches.c.mode == "commit", _batches.c.status == "completed")
        .order_by(_batches.c.completed_at)
    )
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def distinct_row_counts(
    session: AsyncSession, batch_ids: Sequence[str]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(department, period) → (children accepted, rows rejected) over the batches, each counted once:
    a child by its record (the one that remains, when it was merged into another since), a rejected row
    by its ID number's blind index, a rejected row without a usable ID number by itself. For a period
    delivered in several batches, whose rows may overlap (the same rows re-sent with a few more)."""
    if not batch_ids:
        return {}
    children = Child.__table__  # type: ignore[attr-defined]
    accepted = _rows.c.outcome == "accepted"
    rejected = _rows.c.outcome != "accepted"
    query = (
        select(
            _batches.c.department,
            _batches.c.period,
            func.count(
                func.distinct(case((accepted, func.coalesce(children.c.merged_into, _rows.c.child_id))))
            ),
            func.count(func.distinct(case((rejected, _rows.c.id_blind)))),
            func.count(case((rejected & _rows.c.id_blind.is_(None), 1))),
        )
        .select_from(
            _rows.join(_batches, _batches.c.id == _rows.c.batch_id).outerjoin(
                children, children.c.id == _rows.c.child_id
            )
        )
        .where(_rows.c.batch_id.in_(list(batch_ids)))
        .group_by(_batches.c.department, _batches.c.period)
    )
    return {(d, p): (int(a), int(r) + int(n)) for d, p, a, r, n in (await session.execute(query)).all()}
