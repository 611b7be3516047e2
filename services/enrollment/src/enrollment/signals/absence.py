"""Absence reports: a school's batch of students with unexcused absence; four weeks makes a suspected dropout."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.principal import Principal
from baoxue.db import conflict_insert
from baoxue.errors import Problem
from baoxue.service import ServiceContext
from enrollment.settings import settings_of
from enrollment.signals.models import AbsenceReportBatch, AbsenceReportLine
from enrollment.signals.schemas import AbsenceReport, AbsenceReportResult
from enrollment.signals.service import raise_for_student
from enrollment.students.models import StudentRecord
from enrollment.visibility import ensure_visible

A = AbsenceReportLine.__table__  # type: ignore[attr-defined]
BATCHES = AbsenceReportBatch.__table__  # type: ignore[attr-defined]


async def submit_report(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, report: AbsenceReport
) -> AbsenceReportResult:
    """Store a school's batch (multi-row insert; a batch id this school already sent is a harmless replay)
    and raise ``absence_four_weeks`` for each enrolled student absent without excuse for the configured
    span (28 days). The batch is claimed first, by its key (school_code, batch_id): of two concurrent
    sends one applies it and the other is answered as a replay."""
    ensure_visible(principal, report.school_code, resource="school")
    claimed = await session.execute(
        conflict_insert(ctx.db.dialect, BATCHES)
        .values(
            school_code=report.school_code,
            batch_id=report.batch_id,
            reported_on=report.reported_on,
            lines=len(report.lines),
        )
        .on_conflict_do_nothing(index_elements=["school_code", "batch_id"])
        .returning(BATCHES.c.batch_id)
    )
    if claimed.first() is None:
        return AbsenceReportResult(
            batch_id=report.batch_id, lines=len(report.lines), signals_raised=0, replayed=True
        )
    ids = {line.student_id for line in report.lines}
    records = {
        r.id: r
        for r in (
            await session.execute(select(StudentRecord).where(col(StudentRecord.id).in_(ids)))  # type: ignore[attr-defined]
        ).scalars()
    }
    foreign = [i for i in ids if i not in records or records[i].school_code != report.school_code]
    if foreign:
        raise Problem(
            "Some reported students are not records of this school.",
            code="unknown_student",
            status=422,
            errors=[
                {"field": "lines.student_id", "code": "unknown_student", "message": f"{len(foreign)} line(s)"}
            ],
        )
    if report.lines:
        await session.execute(
            insert(A),
            [
                {
                    "batch_id": report.batch_id,
                    "school_code": report.school_code,
                    "student_id": line.student_id,
                    "reported_on": report.reported_on,
                    "unexcused_since": line.unexcused_since,
                    "unexcused_days": line.unexcused_days,
                }
                for line in report.lines
            ],
        )
    span = dt.timedelta(days=settings_of(ctx).absence_days_for_signal)
    raised = 0
    for line in report.lines:
        record = records[line.student_id]
        if record.status != "enrolled" or report.reported_on - line.unexcused_since < span:
            continue
        if await raise_for_student(
            session=session,
            ctx=ctx,
            record=record,
            signal="absence_four_weeks",
            dedupe_key=f"absence:{record.id}:{line.unexcused_since}",
            detected_on=report.reported_on,
        ):
            raised += 1
    await ctx.audit.record(
        session, principal, "create", "absence_report", [report.batch_id], detail=f"lines:{len(report.lines)}"
    )
    return AbsenceReportResult(
        batch_id=report.batch_id, lines=len(report.lines), signals_raised=raised, replayed=False
    )
