"""Queries of the deadlines domain (set-based inserts and updates)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.jurisdiction import within_jurisdiction
from baoxue.auth.principal import Principal
from notify.deadlines.models import Deadline

TABLE = Deadline.__table__  # type: ignore[attr-defined]


async def insert_missing(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert deadlines, skipping those already present for (kind, org, subject); returns rows inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(TABLE).values(list(rows)).on_conflict_do_nothing(index_elements=["kind", "org", "subject_id"])
    )
    # RETURNING, not rowcount: a multi-row insert's rowcount is not reliable on every driver.
    return len((await session.execute(statement.returning(TABLE.c.id))).all())


async def close(
    session: AsyncSession, *, kind: str, subject_id: str, status: str, on: dt.date, org: str | None = None
) -> list[Deadline]:
    """Close the open deadlines of a subject; returns the closed rows."""
    conditions = [
        col(Deadline.kind) == kind,
        col(Deadline.subject_id) == subject_id,
        col(Deadline.status) == "open",
    ]
    if org is not None:
        conditions.append(col(Deadline.org) == org)
    rows = list(
        (await session.execute(select(Deadline).where(and_(*conditions)).with_for_update())).scalars()
    )
    for row in rows:
        row.status = status
        row.closed_on = on
        row.on_time = on <= row.due_date
    await session.flush()
    return rows


async def cancel_for_case(session: AsyncSession, *, case_id: str, on: dt.date) -> int:
    result = await session.execute(
        update(TABLE)
        .where(TABLE.c.case_id == case_id, TABLE.c.status == "open")
        .values(status="cancelled", closed_on=on)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def open_due_by(session: AsyncSession, day: dt.date, *, limit: int = 5000) -> list[Deadline]:
    """Open deadlines due on or before `day`, oldest first, locked against a concurrent sweep."""
    statement = (
        select(Deadline)
        .where(col(Deadline.status) == "open", col(Deadline.due_date) <= day)
        .order_by(col(Deadline.due_date), col(Deadline.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(statement)).scalars())


async def unreminded_due_by(session: AsyncSession, day: dt.date, *, limit: int = 5000) -> list[Deadline]:
    statement = (
        select(Deadline)
        .where(
            col(Deadline.status) == "open", col(Deadline.reminded_on).is_(None), col(Deadline.due_date) <= day
        )  # type: ignore[union-attr]
        .order_by(col(Deadline.due_date), col(Deadline.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(statement)).scalars())


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    after: tuple[str, str] | None,
    limit: int,
    status: str | None,
    kind: str | None,
    org: str | None,
) -> list[Deadline]:
    statement = select(Deadline).where(within_jurisdiction(principal, col(Deadline.org)))
    if status:
        statement = statement.where(col(Deadline.status) == status)
    if kind:
        statement = statement.where(col(Deadline.kind) == kind)
    if org:
        statement = statement.where(col(Deadline.org) == org)
    if after is not None:
        due, ident = after
        statement = statement.where(
            (col(Deadline.due_date) > dt.date.fromisoformat(due))
            | ((col(Deadline.due_date) == dt.date.fromisoformat(due)) & (col(Deadline.id) > ident))
        )
    statement = statement.order_by(col(Deadline.due_date), col(Deadline.id)).limit(limit + 1)
    return list((await session.execute(statement)).scalars())
