"""Every query of student records, transfers and annotations; jurisdiction filters live here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.jurisdiction import within_jurisdiction
from baoxue.auth.principal import Principal
from enrollment.students.models import ACTIVE_STATUSES, IncapacityAnnotation, StudentRecord, StudentTransfer


def visible(principal: Principal):  # type: ignore[no-untyped-def]
    """Case-role scope: the enrolling school's chain, or the school district of the child's hukou place."""
    return within_jurisdiction(
        principal, col(StudentRecord.school_code), col(StudentRecord.hukou_school_district)
    )


async def get_visible(session: AsyncSession, principal: Principal, student_id: str) -> StudentRecord | None:
    stmt = select(StudentRecord).where(col(StudentRecord.id) == student_id, visible(principal))
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_for_update(session: AsyncSession, student_id: str) -> StudentRecord | None:
    stmt = select(StudentRecord).where(col(StudentRecord.id) == student_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_for_child(session: AsyncSession, id_blind_index: str) -> StudentRecord | None:
    stmt = select(StudentRecord).where(
        col(StudentRecord.id_blind_index) == id_blind_index,
        col(StudentRecord.status).in_(ACTIVE_STATUSES),  # type: ignore[attr-defined]
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_for_child_id(session: AsyncSession, child_id: str) -> Sequence[StudentRecord]:
    stmt = (
        select(StudentRecord)
        .where(col(StudentRecord.child_id) == child_id, col(StudentRecord.status).in_(ACTIVE_STATUSES))
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().all()


async def by_number_index(session: AsyncSession, number_index: str) -> StudentRecord | None:
    stmt = select(StudentRecord).where(col(StudentRecord.student_number_index) == number_index)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    after: str | None,
    school_code: str | None = None,
    status: str | None = None,
) -> Sequence[StudentRecord]:
    stmt = select(StudentRecord).where(visible(principal))
    if school_code:
        stmt = stmt.where(col(StudentRecord.school_code) == school_code)
    if status:
        stmt = stmt.where(col(StudentRecord.status) == status)
    if after:
        stmt = stmt.where(col(StudentRecord.id) > after)  # type: ignore[operator]
    stmt = stmt.order_by(col(StudentRecord.id)).limit(limit + 1)  # type: ignore[arg-type]
    return (await session.execute(stmt)).scalars().all()


async def link_child(
    session: AsyncSession, *, child_id: str, id_blind_index: str | None, hukou_school_district: str | None
) -> None:
    """Attach records to the read-model child (by id or blind index) and refresh the hukou district."""
    match = col(StudentRecord.child_id) == child_id
    if id_blind_index:
        match = or_(
            match,
            and_(col(StudentRecord.child_id).is_(None), col(StudentRecord.id_blind_index) == id_blind_index),
        )  # type: ignore[union-attr]
    await session.execute(
        update(StudentRecord)
        .where(match)
        .values(child_id=child_id, hukou_school_district=hukou_school_district)
    )


async def open_transfer(session: AsyncSession, student_id: str) -> StudentTransfer | None:
    stmt = select(StudentTransfer).where(
        col(StudentTransfer.student_id) == student_id,
        col(StudentTransfer.state).in_(("requested", "hanging")),  # type: ignore[attr-defined]
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_transfer(session: AsyncSession, transfer_id: str) -> StudentTransfer | None:
    stmt = select(StudentTransfer).where(col(StudentTransfer.id) == transfer_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def overdue_transfers(session: AsyncSession, today: dt.date) -> Sequence[StudentTransfer]:
    stmt = select(StudentTransfer).where(
        col(StudentTransfer.state) == "requested", col(StudentTransfer.due_on) < today
    )
    return (await session.execute(stmt)).scalars().all()


async def expired_suspensions(session: AsyncSession, today: dt.date) -> Sequence[StudentRecord]:
    stmt = select(StudentRecord).where(
        col(StudentRecord.status) == "suspended",
        col(StudentRecord.suspended_until) < today,  # type: ignore[operator]
    )
    return (await session.execute(stmt)).scalars().all()


async def annotations_of(session: AsyncSession, student_id: str) -> Sequence[IncapacityAnnotation]:
    stmt = (
        select(IncapacityAnnotation)
        .where(col(IncapacityAnnotation.student_id) == student_id)
        .order_by(col(IncapacityAnnotation.assessed_on))  # type: ignore[arg-type]
    )
    return (await session.execute(stmt)).scalars().all()
