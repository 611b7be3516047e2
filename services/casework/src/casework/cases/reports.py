"""The dropout report (basic information, reason, measures, result) to the town and the bureau, and
the periodic sweep that publishes overdue reports."""

import asyncio
import datetime as dt
import logging

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.concurrency import bump_version
from baoxue.contracts.casework import CaseReported, CaseReportOverdue
from baoxue.errors import Conflict
from baoxue.service import ServiceContext
from casework.cases import repository as repo
from casework.cases.events import case_event
from casework.cases.followup import visible_case
from casework.cases.models import Case, CaseReport
from casework.cases.schemas import ReportCreate
from casework.cases.service import settings_of
from casework.semesters import today

log = logging.getLogger(__name__)


async def file_report(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, case_id: str, data: ReportCreate
) -> CaseReport:
    """File the report of a confirmed case once per episode (409 ``report_already_filed``): a case that a
    relapse reopened files again once it is confirmed again. Addressed to the child's hukou town and the
    bureau. Filed on the server's day (China's calendar, ``semesters.today``), never a day the client
    states, and on time when that day is on or before the due date. Publishes CaseReported."""
    case = await visible_case(session, principal, case_id, lock=True)
    if case.confirmed_on is None or case.report_due is None:
        raise Conflict("Only a confirmed dropout is reported.", code="case_not_confirmed", state=case.state)
    episode = case.reopen_count
    if case.reported_on is not None or await repo.get_report(session, case.id, episode) is not None:
        raise Conflict("The report of this case was already filed.", code="report_already_filed")
    filed_on = today()
    town = case.hukou_town or (ctx.directory.town_of(case.school_code) if case.school_code else None)
    report = CaseReport(
        case_id=case.id,
        episode=episode,
        basic_info=data.basic_info,
        reason=data.reason,
        measures=data.measures,
        result=data.result,
        town_code=town,
        bureau_code=ctx.directory.by_role("bureau").code,
        filed_on=filed_on,
        report_due=case.report_due,
        on_time=filed_on <= case.report_due,
        filed_by=principal.subject,
    )
    session.add(report)
    changed = ["reported_on"] if case.reason else ["reported_on", "reason"]
    case.reported_on = filed_on
    case.reason = case.reason or data.reason
    bump_version(case, changed)
    await session.flush()
    await ctx.outbox.add(
        session,
        case_event(CaseReported, case, reported_on=filed_on, on_time=report.on_time),
        subject=case.id,
        sequence=case.version,
    )
    return report


async def publish_overdue_reports(
    *, session: AsyncSession, ctx: ServiceContext, on: dt.date, batch: int = 500
) -> int:
    """Publish CaseReportOverdue once per case whose report is past due on ``on``; returns how many."""
    cases: list[Case] = await repo.overdue_unpublished(session, today=on, batch=batch)
    if not cases:
        return 0
    await ctx.outbox.add_many(
        session,
        [(case_event(CaseReportOverdue, c, report_due=c.report_due), c.id, c.version) for c in cases],
    )
    await session.execute(
        update(Case).where(Case.id.in_([c.id for c in cases])).values(overdue_published=True)  # type: ignore[attr-defined]
    )
    return len(cases)


async def overdue_sweep(ctx: ServiceContext) -> None:
    """Background loop (ServiceSpec.background): publish overdue reports every few minutes."""
    interval = settings_of(ctx).report_sweep_seconds
    while True:
        async with ctx.db.transaction() as session:
            published = await publish_overdue_reports(session=session, ctx=ctx, on=today())
        if published:
            log.info("overdue reports published", extra={"count": published})
            continue
        await asyncio.sleep(interval)
