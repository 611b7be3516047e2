"""Every query of the census and the support plans."""

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth import Principal, within_jurisdiction
from baoxue.db import conflict_insert, hold_transaction_lock
from casework.census.models import Census, CensusEntry, SupportPlan
from casework.visits.models import Roster, RosterEntry


async def lock_census(session: AsyncSession, school_code: str, semester: str) -> None:
    """Serialise, until the end of the transaction, the writes of a school's census of a semester (its
    marks and its completion). Without it a completion counted the marks committed before it and a
    marking transaction still open then stored its marks after the census was closed, outside its
    counts (READ COMMITTED: neither saw the other). Take it before reading the census or its marks."""
    await hold_transaction_lock(
        session,
        f"casework.census:{school_code}:{semester}",
        sqlite_write_lock_on=Census.__table__,  # type: ignore[attr-defined]
    )


async def get_census(session: AsyncSession, school_code: str, semester: str) -> Census | None:
    query = select(Census).where(col(Census.school_code) == school_code, col(Census.semester) == semester)
    return (await session.execute(query)).scalar_one_or_none()


async def insert_census(session: AsyncSession, census: Census) -> bool:
    """Store a completed census unless the school's census of the semester is stored already (``ON
    CONFLICT DO NOTHING`` on its key, no savepoint: a concurrent completion waits for the other's commit
    and then inserts nothing). True when this one was stored."""
    table = Census.__table__  # type: ignore[attr-defined]
    values = {c.name: getattr(census, c.name) for c in table.columns}
    stmt = (
        conflict_insert(session, table)
        .values(values)
        .on_conflict_do_nothing(index_elements=["school_code", "semester"])
        .returning(table.c.id)
    )
    return (await session.execute(stmt)).first() is not None


async def replace_entries(
    session: AsyncSession, school_code: str, semester: str, rows: list[dict[str, Any]]
) -> None:
    """Add or replace the marked students (by student id): one delete, one multi-row insert."""
    await session.execute(
        delete(CensusEntry).where(
            col(CensusEntry.school_code) == school_code,
            col(CensusEntry.semester) == semester,
            col(CensusEntry.student_id).in_([r["student_id"] for r in rows]),
        )
    )
    await session.execute(insert(CensusEntry), rows)


async def categories_by_student(
    session: AsyncSession, school_code: str, semester: str
) -> dict[str, list[str]]:
    """The census marks of a school and semester: student id → categories."""
    query = select(col(CensusEntry.student_id), col(CensusEntry.categories)).where(
        col(CensusEntry.school_code) == school_code, col(CensusEntry.semester) == semester
    )
    return {sid: list(cats) for sid, cats in (await session.execute(query)).all()}


async def entry_categories(session: AsyncSession, school_code: str, semester: str) -> list[list[str]]:
    query = select(col(CensusEntry.categories)).where(
        col(CensusEntry.school_code) == school_code, col(CensusEntry.semester) == semester
    )
    return [list(c) for c in (await session.execute(query)).scalars()]


async def marked_counts(session: AsyncSession, principal: Principal, semester: str) -> dict[str, int]:
    query = (
        select(col(CensusEntry.school_code), func.count())
        .where(col(CensusEntry.semester) == semester, within_jurisdiction(principal, CensusEntry.school_code))
        .group_by(col(CensusEntry.school_code))
    )
    return {school: int(n) for school, n in (await session.execute(query)).all()}


async def completed(session: AsyncSession, principal: Principal, semester: str) -> dict[str, Census]:
    query = select(Census).where(
        col(Census.semester) == semester, within_jurisdiction(principal, Census.school_code)
    )
    return {c.school_code: c for c in (await session.execute(query)).scalars()}


async def students_with_category(
    session: AsyncSession, school_code: str, student_ids: Sequence[str], category: str
) -> set[str]:
    """Which of ``student_ids`` a census of the school marked with ``category`` (any semester)."""
    query = select(col(CensusEntry.student_id), col(CensusEntry.categories)).where(
        col(CensusEntry.school_code) == school_code, col(CensusEntry.student_id).in_(student_ids)
    )
    return {sid for sid, cats in (await session.execute(query)).all() if category in cats}


async def get_plan(
    session: AsyncSession, plan_id: str, principal: Principal | None = None, *, for_update: bool = False
) -> SupportPlan | None:
    query = select(SupportPlan).where(col(SupportPlan.id) == plan_id)
    if principal is not None:
        query = query.where(within_jurisdiction(principal, SupportPlan.school_code))
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_plans(
    session: AsyncSession,
    principal: Principal,
    *,
    kind: str | None,
    school_code: str | None,
    review_before: dt.date | None,
    after: tuple[dt.date, str] | None,
    limit: int,
) -> list[SupportPlan]:
    query = select(SupportPlan).where(within_jurisdiction(principal, SupportPlan.school_code))
    if kind:
        query = query.where(col(SupportPlan.kind) == kind)
    if school_code:
        query = query.where(col(SupportPlan.school_code) == school_code)
    if review_before:
        query = query.where(col(SupportPlan.review_on) <= review_before)
    if after is not None:
        query = query.where(tuple_(col(SupportPlan.review_on), col(SupportPlan.id)) > tuple_(*after))
    query = query.order_by(col(SupportPlan.review_on), col(SupportPlan.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars())


async def lock_roster(session: AsyncSession, school_code: str, semester: str) -> dict[str, Any] | None:
    """The counts of the school's roster of the semester (``students``, ``special_group_students``), its
    row locked (roster replacements take the same lock), or None when the school has not put one yet."""
    query = (
        select(col(Roster.students), col(Roster.special_group_students))
        .where(col(Roster.school_code) == school_code, col(Roster.semester) == semester)
        .with_for_update()
    )
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def roster_quotas(session: AsyncSession, school_code: str, semester: str) -> list[dict[str, Any]]:
    """Each roster entry's own categories (as the roster was put) and the visits it owes now."""
    query = select(
        col(RosterEntry.student_id),
        col(RosterEntry.categories),
        col(RosterEntry.special_group),
        col(RosterEntry.required_visits),
    ).where(col(RosterEntry.school_code) == school_code, col(RosterEntry.semester) == semester)
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def set_roster_quotas(
    session: AsyncSession, school_code: str, semester: str, changes: list[dict[str, Any]]
) -> None:
    """Set ``special_group`` and ``required_visits`` of roster entries (``changes``: student_id, special,
    required)."""
    table = RosterEntry.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table)
        .where(
            table.c.school_code == school_code,
            table.c.semester == semester,
            table.c.student_id == bindparam("sid"),
        )
        .values(special_group=bindparam("special"), required_visits=bindparam("required")),
        [{"sid": c["student_id"], "special": c["special"], "required": c["required"]} for c in changes],
    )
