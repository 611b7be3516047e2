"""Verification tasks: the hukou place's school district resolves each with an outcome and evidence.

"Enrolled elsewhere" stays open (awaiting confirmation) until the enrolling school or district confirms,
or the provincial platform shows the child's record; "not in school" raises a suspected dropout.

The confirmation comes from the other side: the resolver cannot name an enrolling organisation inside its
own area, and nobody whose area covers the task's school district (the resolver, its town, the bureau)
confirms as the enrolling organisation.

The day a resolution or confirmation states (``on``: when the child's whereabouts were established, kept
as ``resolved_on``) may be earlier than the day it reaches the system (an officer working offline) but
never later (422 ``resolution_date_in_future``). Whether the task was resolved on time is judged on the
server's day (China's), not on the stated one: a resolution recorded after the deadline is late whatever
day it states. On the demo's stack (``ENROLLMENT_SIMULATION``), which plays the year in minutes, the
stated day is the day it is judged on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.jurisdiction import within_jurisdiction
from baoxue.auth.principal import Principal
from baoxue.concurrency import check_version
from baoxue.contracts.enrollment import VerificationTaskResolved
from baoxue.errors import Conflict, Forbidden, NotFound, Problem
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from enrollment.children import repository as children
from enrollment.provincial.models import ProvincialRecord
from enrollment.settings import settings_of
from enrollment.signals.service import raise_signal
from enrollment.verification.models import VerificationTask
from enrollment.verification.schemas import TaskConfirmation, TaskResolution
from enrollment.visibility import ensure_visible


def judged_day(ctx: ServiceContext, on: dt.date) -> dt.date:
    """The day a resolution or confirmation stating ``on`` is judged on (its timeliness): the server's
    day, or ``on`` itself on the demo's stack. 422 ``resolution_date_in_future`` when ``on`` is after the
    server's day."""
    today = today_in_china()
    if on > today:
        raise Problem(
            "A task cannot be resolved or confirmed on a future day.",
            code="resolution_date_in_future",
            status=422,
            errors=[{"field": "on", "code": "in_future", "message": f"after {today.isoformat()}"}],
        )
    return on if settings_of(ctx).simulation else today


async def _load(session: AsyncSession, task_id: str) -> VerificationTask:
    task = (
        await session.execute(
            select(VerificationTask).where(col(VerificationTask.id) == task_id).with_for_update()
        )
    ).scalar_one_or_none()
    if task is None:
        raise NotFound("No such verification task.", code="task_not_found")
    return task


async def list_tasks(
    *,
    session: AsyncSession,
    principal: Principal,
    campaign_id: str | None,
    state: str | None,
    limit: int,
    after: str | None,
) -> Sequence[VerificationTask]:
    stmt = select(VerificationTask).where(
        within_jurisdiction(
            principal, col(VerificationTask.hukou_school_district), col(VerificationTask.enrolling_org)
        )
    )
    if campaign_id:
        stmt = stmt.where(col(VerificationTask.campaign_id) == campaign_id)
    if state:
        stmt = stmt.where(col(VerificationTask.state) == state)
    if after:
        stmt = stmt.where(col(VerificationTask.id) > after)  # type: ignore[operator]
    return (await session.execute(stmt.order_by(col(VerificationTask.id)).limit(limit + 1))).scalars().all()  # type: ignore[arg-type]


RESOLUTION_FIELDS = ("state", "outcome", "evidence", "enrolling_org", "resolved_on")


async def resolve(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    task_id: str,
    data: TaskResolution,
    expected_version: int | None = None,
) -> VerificationTask:
    """Record where the child is. Only the task's school district (or above) may resolve it.
    ``expected_version`` (from ``If-Match``; optional, honoured when sent): 412 naming the resolution's
    fields when the task moved on since, checked under the row lock."""
    task = await _load(session, task_id)
    ensure_visible(principal, task.hukou_school_district, resource="verification task")
    if expected_version is not None:
        check_version(expected_version, task.version, RESOLUTION_FIELDS)
    judged_on = judged_day(ctx, data.on)
    if task.state not in ("open", "awaiting_confirmation"):
        raise Conflict("The task is already closed.", code="task_closed", state=task.state)
    task.outcome, task.evidence, task.version = data.outcome, data.evidence, task.version + 1
    task.enrolling_org = data.enrolling_org
    if data.outcome == "enrolled_elsewhere":
        if not data.enrolling_org:
            raise Problem(
                "Name the enrolling school, district or province.",
                code="confirmation_required",
                status=422,
                errors=[{"field": "enrolling_org", "code": "missing", "message": "missing"}],
            )
        if principal.covers(data.enrolling_org):
            raise Problem(
                "The enrolling organisation is inside your own area: record the child as enrolled there.",
                code="enrolling_org_inside_own_area",
                status=422,
                errors=[{"field": "enrolling_org", "code": "inside_own_area", "message": "inside_own_area"}],
            )
        task.state = "awaiting_confirmation"
        session.add(task)
        await ctx.audit.record(
            session, principal, "resolve", "verification_task", [task.id], detail="awaiting_confirmation"
        )
        return task
    await _close(session=session, ctx=ctx, principal=principal, task=task, on=data.on, judged_on=judged_on)
    if data.outcome == "not_in_school":
        child = await children.get(session, task.child_id)
        await raise_signal(
            session=session,
            ctx=ctx,
            signal="verification_not_in_school",
            dedupe_key=f"verification:{task.id}",
            detected_on=data.on,
            child_id=task.child_id,
            id_blind_index=child.id_blind_index if child else None,
            hukou_town=task.hukou_town,
            hukou_school_district=task.hukou_school_district,
        )
    return task


async def confirm(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    task_id: str,
    data: TaskConfirmation,
    expected_version: int | None = None,
) -> VerificationTask:
    """Confirm 'enrolled elsewhere': by the enrolling organisation itself, or by the provincial platform's record
    of the child (imported by the sync) with status enrolled at a school outside this district and inside
    the enrolling organisation the resolution named (its code a prefix of the school's: the school, its
    district, or a province). ``expected_version`` as for :func:`resolve`."""
    task = await _load(session, task_id)
    if expected_version is not None or task.state != "awaiting_confirmation":
        # who may not see the task learns nothing of its version or state
        ensure_visible(
            principal, task.hukou_school_district, task.enrolling_org, resource="verification task"
        )
    if expected_version is not None:
        check_version(expected_version, task.version, RESOLUTION_FIELDS)
    if task.state != "awaiting_confirmation":
        raise Conflict("The task is not awaiting confirmation.", code="not_awaiting_confirmation")
    if data.source == "enrolling_org":
        if not (principal.has_role("provincial_platform") or principal.covers(task.enrolling_org)):
            raise NotFound("No such verification task.", code="task_not_found")
        if not principal.has_role("provincial_platform") and principal.covers(task.hukou_school_district):
            raise Forbidden(
                "The task's own side cannot confirm its 'enrolled elsewhere'; the enrolling organisation "
                "or the provincial platform does.",
                code="confirmation_by_own_side",
            )
    else:
        ensure_visible(principal, task.hukou_school_district, resource="verification task")
        child = await children.get(session, task.child_id)
        shown = None
        if child is not None and child.id_blind_index and task.enrolling_org:
            school = col(ProvincialRecord.school_code)
            shown = (
                await session.execute(
                    select(col(ProvincialRecord.platform_record_id))
                    .where(
                        col(ProvincialRecord.id_blind_index) == child.id_blind_index,
                        col(ProvincialRecord.status) == "enrolled",
                        school.startswith(task.enrolling_org, autoescape=True),
                        ~school.startswith(ctx.directory.district_code, autoescape=True),
                    )
                    .limit(1)
                )
            ).scalar_one_or_none()
        if shown is None:
            raise Conflict(
                "The provincial platform shows no record of the child at the enrolling organisation "
                "outside the district.",
                code="confirmation_required",
            )
    judged_on = judged_day(ctx, data.on)
    task.confirmed_by = principal.subject
    await _close(session=session, ctx=ctx, principal=principal, task=task, on=data.on, judged_on=judged_on)
    return task


async def _close(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    task: VerificationTask,
    on: dt.date,
    judged_on: dt.date,
) -> None:
    """Resolve the task as of the stated day ``on``; on time when ``judged_on`` (:func:`judged_day`) is
    not after the task's due day."""
    task.state, task.resolved_on = "resolved", on
    task.version += 1
    session.add(task)
    assert task.outcome is not None
    event = VerificationTaskResolved(
        task_id=task.id,
        campaign_id=task.campaign_id,
        child_id=task.child_id,
        outcome=task.outcome,
        hukou_school_district=task.hukou_school_district,
        resolved_on=on,
        on_time=judged_on <= task.due_on,
        due_date=task.due_on,
    )
    await ctx.outbox.add(session, event, subject=task.id, sequence=task.version)
    await ctx.audit.record(session, principal, "resolve", "verification_task", [task.id], detail=task.outcome)
