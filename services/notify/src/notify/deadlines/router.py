"""Deadline endpoints: the caller's deadlines, and a sweep on demand (bureau)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.errors import Problem
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from baoxue.workdays import today_in_china
from notify.deadlines import repository, service
from notify.deadlines.models import Deadline
from notify.deadlines.schemas import DeadlinePublic, SweepPublic, SweepRequest
from notify.settings import NotifySettings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/deadlines", tags=["deadlines"])


def _public(row: Deadline) -> DeadlinePublic:
    return DeadlinePublic(
        id=row.id,
        kind=row.kind,
        org=row.org,
        subject_id=row.subject_id,
        case_id=row.case_id,
        due_date=row.due_date,
        status=row.status,
        warnings=[w for w in row.warnings.split(",") if w],
        reminded_on=row.reminded_on,
        closed_on=row.closed_on,
        on_time=row.on_time,
    )


@router.get("", summary="Deadlines of organisations in the caller's jurisdiction, by due date")
async def list_deadlines(
    session: SessionDep,
    principal: Annotated[Principal, Depends(requires("deadline:read"))],
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[str | None, Query(pattern="^(open|met|lapsed|cancelled)$")] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    org: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[DeadlinePublic]:
    rows = await repository.page(
        session,
        principal,
        after=decode_cursor(cursor, (dt.date, str)),
        limit=limit,
        status=status,
        kind=kind,
        org=org,
    )
    return page_of([_public(r) for r in rows], limit, lambda d: [d.due_date.isoformat(), d.id])


@router.post(
    "/sweep",
    summary="Run the deadline sweep now (reminders, lapses, the ladder's climb); a future date only in simulation",
)
async def run_sweep(
    body: SweepRequest,
    session: SessionDep,
    ctx: Ctx,
    _: Annotated[Principal, Depends(requires("calendar:admin"))],
) -> SweepPublic:
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    today = body.today or today_in_china()
    if today > today_in_china() and not settings.simulation:
        raise Problem(
            f"A sweep cannot run for a future date ({today.isoformat()} is after today, "
            f"{today_in_china().isoformat()}, in Asia/Shanghai). Future dates are allowed only in simulation "
            "(NOTIFY_SIMULATION=true, the demo's stack; never in production).",
            code="sweep_date_in_future",
            status=422,
        )
    if today > today_in_china():
        log.warning("simulated sweep for a future date", extra={"as_of": today.isoformat()})
    # A past date catches up on reminders and lapses of what is open, but opens no statutory deadline
    # of its year (they would all lapse at the next sweep): only in simulation, which plays a year.
    open_statutory = settings.simulation or today >= today_in_china()
    if not open_statutory:
        log.info("sweep for a past date: no statutory deadlines opened", extra={"as_of": today.isoformat()})
    result = await service.sweep(session=session, ctx=ctx, today=today, open_statutory=open_statutory)
    return SweepPublic(
        today=today,
        opened=result.opened,
        reminded=result.reminded,
        lapsed=result.lapsed,
        advanced=result.advanced,
    )
