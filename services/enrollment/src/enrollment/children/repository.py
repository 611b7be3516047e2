"""Queries of the children read model (set-based upserts; stale sequences never overwrite newer ones)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from enrollment.children.models import ChildView

_T = ChildView.__table__  # type: ignore[attr-defined]


async def upsert_snapshot(session: AsyncSession, values: dict[str, Any], *, dialect: str) -> bool:
    """Insert or replace a child's row unless the stored sequence is newer; True if applied."""
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(_T).values(values)
    changed = {k: ins.excluded[k] for k in values if k != "child_id"}
    stmt = ins.on_conflict_do_update(
        index_elements=["child_id"], set_=changed, where=_T.c.sequence < ins.excluded.sequence
    ).returning(_T.c.child_id)
    return (await session.execute(stmt)).first() is not None


async def set_status(
    session: AsyncSession, *, child_id: str, status: str, merged_into: str | None, sequence: int
) -> bool:
    """Apply a registry status change if it is newer than what is stored; True if applied."""
    result = await session.execute(
        update(_T)
        .where(_T.c.child_id == child_id, _T.c.sequence < sequence)
        .values(status=status, merged_into=merged_into, sequence=sequence)
        .returning(_T.c.child_id)
    )
    return result.first() is not None


async def get(session: AsyncSession, child_id: str) -> ChildView | None:
    return (
        await session.execute(select(ChildView).where(col(ChildView.child_id) == child_id))
    ).scalar_one_or_none()


async def by_blind_index(session: AsyncSession, blind_index: str) -> ChildView | None:
    """The active child with this ID blind index (the first one if the registry still holds duplicates)."""
    rows = await session.execute(
        select(ChildView)
        .where(col(ChildView.id_blind_index) == blind_index)
        .order_by((col(ChildView.status) != "active"), col(ChildView.child_id))  # type: ignore[arg-type]
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def clear(session: AsyncSession) -> int:
    result = await session.execute(delete(_T).returning(_T.c.child_id))
    return len(result.all())
