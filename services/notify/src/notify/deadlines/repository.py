"""Queries of the deadlines domain (set-based inserts and updates)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.jurisdiction import within_jurisdiction
from baoxue.auth.principal import Principal
from baoxue.db import conflict_insert
from notify.deadlines.models import Deadline

TABLE = Deadline.__table__  # type: ignore[attr-defined]


async def insert_missing(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert deadlines, skipping those already present for (kind, org, subject); returns rows inserted.

    One batched executemany (SQLAlchemy's insertmanyvalues) with RETURNING: counting returned ids is
    exact on every driver, where a multi-row rowcount is not."""
    if not rows:
        return 0
    statement = (
        conflict_insert(session, TABLE)
        .on_conflict_do_nothing(index_elements=["kind", "org", "subject_id"])
        .returning(TABLE.c.id)
    )
    return len((await session.execute(statement, list(rows))).all())


async def has_case_report(session: AsyncSession, *, case_id: str, subject_id: str, due: dt.date) -> bool:
    """Whether the case already has a report deadline for the confirmation whose subject is `subject_id`
    and whose report is due on `due`: under that subject (one per confirmation), or under the subject
    report deadlines had before there was one per confirmation, the case id alone, with the same due
    date (whatever its status)."""
    statement = (
        select(TABLE.c.id)
        .where(
            TABLE.c.kind == "case_report",
            TABLE.c.case_id == case_id,
            or_(
                TABLE.c.subject_id == subject_id,
                and_(TABLE.c.subject_id == case_id, TABLE.c.due_date == due),
            ),
        )
        .limit(1)
    )
    return (await session.execute(statement)).first() is not None


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


async def of_subject(session: AsyncSession, *, kind: str, subject_id: str) -> list[Deadline]:
    """Every deadline of `kind` of a subject, whatever its organisation and status, locked for update
    (one per organisation that owned the subject: a verification task moved between districts has one
    per district)."""
    statement = (
        select(Deadline)
        .where(col(Deadline.kind) == kind, col(Deadline.subject_id) == subject_id)
        .order_by(col(Deadline.created_at), col(Deadline.id))
        .with_for_update()
    )
    return list((await session.execute(statement)).scalars())


async def close_latest_of_case(
    session: AsyncSession, *, kind: str, case_id: str, status: str, on: dt.date
) -> Deadline | None:
    """Close the case's open deadline of `kind` opened for its latest episode (the latest due date);
    an earlier episode's deadline still open is left to the sweep. Returns the closed row."""
    statement = (
        select(Deadline)
        .where(col(Deadline.kind) == kind, col(Deadline.case_id) == case_id, col(Deadline.status) == "open")
        .order_by(col(Deadline.due_date).desc(), col(Deadline.created_at).desc())
        .limit(1)
        .with_for_update()
    )
    row = (await session.execute(statement)).scalars().first()
    if row is not None:
        row.status, row.closed_on, row.on_time = status, on, on <= row.due_date
        await session.flush()
    return row


async def cancel_for_escalation(session: AsyncSession, *, escalation_id: str, on: dt.date) -> int:
    """Cancel the open deadlines of a ladder's levels (subject ``<escalation id>:<level>``); the case's
    other deadlines (the school's report, referral receipts) stay open: a stopped ladder does not
    release anyone from them."""
    result = await session.execute(
        update(TABLE)
        .where(
            TABLE.c.kind.startswith("escalation_"),
            TABLE.c.subject_id.startswith(f"{escalation_id}:", autoescape=True),
            TABLE.c.status == "open",
        )
        .values(status="cancelled", closed_on=on)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def lapse_due(session: AsyncSession, today: dt.date) -> list[Any]:
    """Mark every open deadline due before `today` lapsed, in one UPDATE … RETURNING (a concurrent sweep
    waits on the row locks and then finds them no longer open, so nothing lapses twice)."""
    statement = (
        update(TABLE)
        .where(TABLE.c.status == "open", TABLE.c.due_date < today)
        .values(status="lapsed", closed_on=today, on_time=False)
        .returning(
            TABLE.c.id, TABLE.c.kind, TABLE.c.org, TABLE.c.subject_id, TABLE.c.due_date, TABLE.c.warnings
        )
    )
    return list((await session.execute(statement)).all())


async def open_overdue(session: AsyncSession, *, kind: str, today: dt.date) -> list[Any]:
    """Open deadlines of `kind` due before `today` (id, org, subject, due date): about to lapse."""
    statement = select(TABLE.c.id, TABLE.c.org, TABLE.c.subject_id, TABLE.c.due_date).where(
        TABLE.c.kind == kind, TABLE.c.status == "open", TABLE.c.due_date < today
    )
    return list((await session.execute(statement)).all())


async def settle_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Set warnings and, where ``b_status`` is not 'open', close deadlines: one executemany UPDATE."""
    if not rows:
        return
    statement = (
        update(TABLE)
        .where(TABLE.c.id == bindparam("b_id"), TABLE.c.status == "open")
        .values(
            warnings=bindparam("b_warnings"),
            status=bindparam("b_status"),
            closed_on=bindparam("b_closed_on"),
            on_time=bindparam("b_on_time"),
        )
    )
    await session.execute(statement.execution_options(synchronize_session=False), list(rows))


async def mark_reminded(session: AsyncSession, ids: Sequence[str], today: dt.date) -> None:
    for start in range(0, len(ids), 1000):
        await session.execute(
            update(TABLE).where(TABLE.c.id.in_(ids[start : start + 1000])).values(reminded_on=today)
        )


async def unreminded_due_by(session: AsyncSession, today: dt.date, horizon: dt.date) -> list[Any]:
    """Open deadlines from `today` to `horizon` not reminded yet (id, kind, org, subject, due date)."""
    statement = select(TABLE.c.id, TABLE.c.kind, TABLE.c.org, TABLE.c.subject_id, TABLE.c.due_date).where(
        TABLE.c.status == "open", TABLE.c.reminded_on.is_(None), TABLE.c.due_date.between(today, horizon)
    )
    return list((await session.execute(statement)).all())


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    after: tuple[dt.date, str] | None,
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
            (col(Deadline.due_date) > due) | ((col(Deadline.due_date) == due) & (col(Deadline.id) > ident))
        )
    statement = statement.order_by(col(Deadline.due_date), col(Deadline.id)).limit(limit + 1)
    return list((await session.execute(statement)).scalars())
