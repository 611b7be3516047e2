"""Absence reports: a school's batch of students with unexcused absence; four weeks makes a suspected dropout.

Four weeks (``absence_four_weeks``): the run of unexcused absence spans at least
``absence_days_for_signal`` days (28) from ``unexcused_since`` to the report's ``reported_on``, AND at least
``absence_school_days_for_signal`` school days (20: four weeks of five) of it were missed. A report dated
after today (China's day) is refused whole (422 ``absence_report_in_future``: every line is as of that
day); a line whose run starts after the report (``absence_starts_after_report``) or claims more days than
the run has (``absence_days_exceed_span``) is refused on its own and the batch's other lines are applied,
as the student batch registration reports per-record outcomes. A student who is not a record of the
school refuses the whole batch (422 ``unknown_student``: the wrong school's file, most likely).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.principal import Principal
from baoxue.db import conflict_insert
from baoxue.errors import Problem, problem_title
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from enrollment.settings import settings_of
from enrollment.signals.models import AbsenceReportBatch, AbsenceReportLine
from enrollment.signals.schemas import AbsenceLine, AbsenceLineRefusal, AbsenceReport, AbsenceReportResult
from enrollment.signals.service import raise_for_student
from enrollment.students.models import StudentRecord
from enrollment.visibility import ensure_visible

A = AbsenceReportLine.__table__  # type: ignore[attr-defined]
BATCHES = AbsenceReportBatch.__table__  # type: ignore[attr-defined]


def _refusal(index: int, line: AbsenceLine, code: str, field: str, message: str) -> AbsenceLineRefusal:
    return AbsenceLineRefusal(
        index=index,
        student_id=line.student_id,
        code=code,
        title=problem_title(code, "en"),
        title_zh=problem_title(code, "zh"),
        errors=[{"field": f"lines[{index}].{field}", "code": code, "message": message}],
    )


def _check_line(index: int, line: AbsenceLine, reported_on: dt.date) -> AbsenceLineRefusal | None:
    """The line's own consistency with the report's day (no database)."""
    if line.unexcused_since > reported_on:
        return _refusal(
            index, line, "absence_starts_after_report", "unexcused_since", f"after {reported_on.isoformat()}"
        )
    span = (reported_on - line.unexcused_since).days + 1
    if line.unexcused_days > span:
        return _refusal(
            index,
            line,
            "absence_days_exceed_span",
            "unexcused_days",
            f"more than the {span} day(s) of the run",
        )
    return None


async def submit_report(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, report: AbsenceReport
) -> AbsenceReportResult:
    """Store a school's batch (multi-row insert of the lines that pass their checks; a batch id this school
    already sent is a harmless replay) and raise ``absence_four_weeks`` for each enrolled student absent
    without excuse for four weeks (see the module). The batch is claimed first, by its key (school_code,
    batch_id): of two concurrent sends one applies it and the other is answered as a replay."""
    ensure_visible(principal, report.school_code, resource="school")
    today = today_in_china()
    if report.reported_on > today:
        raise Problem(
            "An absence report cannot be dated after today.",
            code="absence_report_in_future",
            status=422,
            errors=[
                {
                    "field": "reported_on",
                    "code": "absence_report_in_future",
                    "message": f"after {today.isoformat()}",
                }
            ],
        )
    refused = [r for i, line in enumerate(report.lines) if (r := _check_line(i, line, report.reported_on))]
    skipped = {r.index for r in refused}
    lines = [line for i, line in enumerate(report.lines) if i not in skipped]
    claimed = await session.execute(
        conflict_insert(ctx.db.dialect, BATCHES)
        .values(
            school_code=report.school_code,
            batch_id=report.batch_id,
            reported_on=report.reported_on,
            lines=len(lines),
        )
        .on_conflict_do_nothing(index_elements=["school_code", "batch_id"])
        .returning(BATCHES.c.batch_id)
    )
    if claimed.first() is None:
        stored = await session.execute(
            select(BATCHES.c.lines).where(
                BATCHES.c.school_code == report.school_code, BATCHES.c.batch_id == report.batch_id
            )
        )
        return AbsenceReportResult(
            batch_id=report.batch_id,
            lines=len(report.lines),
            accepted=int(stored.scalar_one()),
            signals_raised=0,
            replayed=True,
            refused=refused,
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
    if lines:
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
                for line in lines
            ],
        )
    settings = settings_of(ctx)
    span = dt.timedelta(days=settings.absence_days_for_signal)
    raised = 0
    for line in lines:
        record = records[line.student_id]
        if (
            record.status != "enrolled"
            or report.reported_on - line.unexcused_since < span
            or line.unexcused_days < settings.absence_school_days_for_signal
        ):
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
        session,
        principal,
        "create",
        "absence_report",
        [report.batch_id],
        detail=f"lines:{len(lines)},refused:{len(refused)}",
    )
    return AbsenceReportResult(
        batch_id=report.batch_id,
        lines=len(report.lines),
        accepted=len(lines),
        signals_raised=raised,
        replayed=False,
        refused=refused,
    )
