"""Junior-3 spring leavers to vocational school: confirmed in time, or a hidden dropout is suspected."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.principal import Principal
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.service import ServiceContext
from enrollment.settings import settings_of
from enrollment.signals.models import VocationalLeaver
from enrollment.signals.service import raise_for_student
from enrollment.students import repository as students
from enrollment.students.transitions import apply_status, load_writable
from enrollment.visibility import ensure_visible


async def register_leaver(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    student_id: str,
    vocational_school: str,
    left_on: dt.date,
) -> VocationalLeaver:
    """The junior school reports a grade-9 student leaving for a vocational school: the record closes
    (graduated, reason vocational_transfer) and the vocational school must confirm within the limit."""
    record = await load_writable(session, principal, student_id)
    if record.grade != 9 or record.status != "enrolled":
        raise Problem(
            "Only an enrolled junior-3 (grade 9) student can leave for vocational school.",
            code="invalid_transition",
            status=409,
        )
    school = ctx.directory.get(vocational_school)
    if school is None or school.kind != "school":
        raise Problem("The vocational school is not in the directory.", code="unknown_school", status=422)
    days = settings_of(ctx).vocational_confirm_days
    leaver = VocationalLeaver(
        id=str(uuid.uuid4()),
        student_id=record.id,
        from_school=record.school_code,
        vocational_school=vocational_school,
        left_on=left_on,
        confirm_by=left_on + dt.timedelta(days=days),
    )
    session.add(leaver)
    await apply_status(
        session=session,
        ctx=ctx,
        principal=principal,
        record=record,
        status="graduated",
        on=left_on,
        reason="vocational_transfer",
    )
    return leaver


async def _load(session: AsyncSession, principal: Principal, leaver_id: str) -> VocationalLeaver:
    leaver = (
        await session.execute(
            select(VocationalLeaver).where(col(VocationalLeaver.id) == leaver_id).with_for_update()
        )
    ).scalar_one_or_none()
    if leaver is None:
        raise NotFound("No such vocational leaver.", code="leaver_not_found")
    ensure_visible(principal, leaver.vocational_school, resource="vocational leaver")
    return leaver


async def confirm(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, leaver_id: str, on: dt.date
) -> VocationalLeaver:
    """The vocational school confirms the student's record there (also after the limit: late, not lost)."""
    leaver = await _load(session, principal, leaver_id)
    if leaver.state not in ("pending", "overdue"):
        raise Conflict("The leaver is already closed.", code="invalid_transition")
    leaver.state, leaver.closed_on = "confirmed", on
    session.add(leaver)
    await ctx.audit.record(session, principal, "confirm", "vocational_leaver", [leaver.id])
    return leaver


async def report_lost(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, leaver_id: str, on: dt.date
) -> VocationalLeaver:
    """The vocational school reports the student lost: a hidden dropout (``vocational_lost``)."""
    leaver = await _load(session, principal, leaver_id)
    if leaver.state == "lost":
        raise Conflict("The leaver was already reported lost.", code="invalid_transition")
    leaver.state, leaver.closed_on = "lost", on
    session.add(leaver)
    record = await students.get_for_update(session, leaver.student_id)
    assert record is not None
    await raise_for_student(
        session=session,
        ctx=ctx,
        record=record,
        signal="vocational_lost",
        dedupe_key=f"vocational_lost:{leaver.id}",
        detected_on=on,
    )
    await ctx.audit.record(session, principal, "report_lost", "vocational_leaver", [leaver.id])
    return leaver


async def flag_unconfirmed(*, session: AsyncSession, ctx: ServiceContext, today: dt.date) -> int:
    """Leavers still unconfirmed after the limit: ``vocational_unconfirmed`` once each."""
    rows = (
        (
            await session.execute(
                select(VocationalLeaver).where(
                    col(VocationalLeaver.state) == "pending", col(VocationalLeaver.confirm_by) < today
                )
            )
        )
        .scalars()
        .all()
    )
    for leaver in rows:
        leaver.state = "overdue"
        session.add(leaver)
        record = await students.get_for_update(session, leaver.student_id)
        if record is not None:
            await raise_for_student(
                session=session,
                ctx=ctx,
                record=record,
                signal="vocational_unconfirmed",
                dedupe_key=f"vocational_unconfirmed:{leaver.id}",
                detected_on=today,
            )
    return len(rows)
