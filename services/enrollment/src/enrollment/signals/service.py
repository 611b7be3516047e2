"""Raising dropout signals (DropoutSuspected): stored once per dedupe key, published in the same transaction."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.enrollment import DropoutSignal, DropoutSuspected
from baoxue.db import conflict_insert, utcnow
from baoxue.service import ServiceContext
from enrollment.signals.models import DropoutSignalRecord
from enrollment.students.models import StudentRecord


async def raise_signal(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    signal: DropoutSignal,
    dedupe_key: str,
    detected_on: dt.date,
    child_id: str | None = None,
    student_id: str | None = None,
    id_blind_index: str | None = None,
    school_code: str | None = None,
    hukou_town: str | None = None,
    hukou_school_district: str | None = None,
) -> str | None:
    """Record and publish one suspected dropout; None (and nothing published) if this key was raised before."""
    signal_id = str(uuid.uuid4())
    table = DropoutSignalRecord.__table__  # type: ignore[attr-defined]
    result = await session.execute(
        conflict_insert(ctx.db.dialect, table)
        .values(
            id=signal_id,
            dedupe_key=dedupe_key,
            signal=signal,
            child_id=child_id,
            student_id=student_id,
            school_code=school_code,
            hukou_school_district=hukou_school_district,
            detected_on=detected_on,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.id)  # rowcount is not reliable for ON CONFLICT on every driver
    )
    if result.first() is None:
        return None
    if hukou_town is None and hukou_school_district:
        hukou_town = ctx.directory.town_of(hukou_school_district)
    event = DropoutSuspected(
        signal_id=signal_id,
        signal=signal,
        child_id=child_id,
        student_id=student_id,
        id_blind_index=id_blind_index,
        school_code=school_code,
        hukou_town=hukou_town,
        hukou_school_district=hukou_school_district,
        detected_on=detected_on,
    )
    await ctx.outbox.add(session, event, subject=child_id or student_id or signal_id, sequence=1)
    return signal_id


async def raise_for_student(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    record: StudentRecord,
    signal: DropoutSignal,
    dedupe_key: str,
    detected_on: dt.date,
) -> str | None:
    """A signal about a student record (the record names the child, school and hukou district)."""
    return await raise_signal(
        session=session,
        ctx=ctx,
        signal=signal,
        dedupe_key=dedupe_key,
        detected_on=detected_on,
        child_id=record.child_id,
        student_id=record.id,
        id_blind_index=record.id_blind_index,
        school_code=record.school_code,
        hukou_school_district=record.hukou_school_district,
    )
