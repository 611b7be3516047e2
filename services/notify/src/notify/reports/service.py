"""The end-of-March and end-of-October dropout reports (山政办字〔2019〕49号: school districts and
schools report dropouts by the end of March and of October): generated from the case events notify
consumes, frozen per generation, closing the bureau's ``dropout_report`` deadline of the period.

Windows: the March report covers 1 November of the previous year to 31 March, the October report
1 April to 31 October (each report covers the time since the previous one)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.errors import NotFound, Problem
from baoxue.service import ServiceContext
from notify.deadlines.service import meet_deadline
from notify.delivery.inbox import Post, post_messages
from notify.reports import repository
from notify.reports.exports import ReportView
from notify.reports.models import DropoutReport
from notify.settings import NotifySettings

FIGURES = ("suspected", "confirmed", "returned", "escalated", "reopened")


def window(period: str) -> tuple[dt.date, dt.date]:
    """The first and last day a period's report covers."""
    year, month = int(period[:4]), int(period[5:])
    if month == 3:
        return dt.date(year - 1, 11, 1), dt.date(year, 3, 31)
    return dt.date(year, 4, 1), dt.date(year, 10, 31)


async def generate(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, period: str, today: dt.date
) -> DropoutReport:
    """Compute and freeze the period's figures as of today (as of the period's end once it has passed,
    or in simulation). A report as of the period's end is final and meets the bureau's deadline; an
    earlier one is provisional. 422 ``report_period_not_started`` before the window opens."""
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    start, end = window(period)
    if today < start and not settings.simulation:
        raise Problem(
            "The report's period has not started yet.", code="report_period_not_started", status=422
        )
    as_of = end if settings.simulation else min(end, today)
    rows = [
        {
            "town": r.town,
            "school": r.school,
            **{name: int(getattr(r, name) or 0) for name in FIGURES},
        }
        for r in await repository.counts(session, start=start, end=as_of)
    ]
    report = DropoutReport(
        id=str(uuid.uuid4()),
        period=period,
        version=await repository.latest_version(session, period) + 1,
        window_start=start,
        as_of=as_of,
        final=as_of == end,
        rows=json.dumps(rows, sort_keys=True),
        generated_by=principal.subject,
    )
    session.add(report)
    await session.flush()
    bureau = ctx.directory.by_role("bureau").code
    if report.final:
        await meet_deadline(session=session, kind="dropout_report", subject_id=period, org=bureau, on=today)
    view = view_of(ctx, report, scope="")
    await post_messages(
        session,
        [
            Post(org, "bulletin", view.title, ref_type="dropout_report", ref_id=report.id)
            for org in (bureau, ctx.directory.by_role("inspector").code)
        ],
    )
    return report


async def get(*, session: AsyncSession, report_id: str) -> DropoutReport:
    report = await repository.get(session, report_id)
    if report is None:
        raise NotFound("No such report.")
    return report


def rows_within(report: DropoutReport, scope: str) -> list[dict[str, Any]]:
    """The report's rows inside a jurisdiction (a town sees its own schools and children)."""
    rows: list[dict[str, Any]] = json.loads(report.rows)
    return [r for r in rows if r["town"].startswith(scope) or (r["school"] or "").startswith(scope)]


def view_of(ctx: ServiceContext, report: DropoutReport, *, scope: str) -> ReportView:
    def name(code: str | None) -> str | None:
        if code is None:
            return None
        org = ctx.directory.get(code)
        return org.name_zh.removeprefix("山亭区") if org is not None else code

    month = "3" if report.period.endswith("-03") else "10"
    rows = rows_within(report, scope)
    return ReportView(
        title=f"山亭区{report.period[:4]}年{month}月底义务教育阶段学生辍学情况报告",
        window=f"{report.window_start.isoformat()} 至 {report.as_of.isoformat()}",
        final=report.final,
        version=report.version,
        rows=[
            (
                r["town"],
                name(r["town"]) or r["town"],
                r["school"],
                name(r["school"]),
                [r.get(f, 0) for f in FIGURES],
            )
            for r in rows
        ],
    )
