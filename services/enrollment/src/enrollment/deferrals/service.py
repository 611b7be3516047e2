"""Deferral and exemption: filed in the September window with evidence, decided by the bureau, valid for a
period. The window is checked on the day the server receives the application (China's day): a client's
``filed_on`` (the date on the guardian's form) may be earlier, never later, and does not move the window
(except on the demo's stack, ``ENROLLMENT_SIMULATION``, where a past ``filed_on`` is the filing day).
Once ``valid_until`` has passed the child is expected at school again: the verification no longer counts
the application (it looks at validity on the campaign's as-of date), and the sweep publishes
DeferralExpired once (:func:`publish_expired`)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.jurisdiction import within_jurisdiction
from baoxue.auth.principal import Principal
from baoxue.concurrency import check_version
from baoxue.contracts.enrollment import DeferralExpired
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from enrollment.children import repository as children
from enrollment.deferrals.models import DeferralApplication
from enrollment.deferrals.schemas import DeferralCreate, DeferralDecision, DeferralPublic
from enrollment.settings import settings_of
from enrollment.students import repository as students
from enrollment.students.transitions import one_year_after
from enrollment.visibility import not_found

# What a decision or the expiry sweep changes: named by a 412 on a stale If-Match.
DECISION_FIELDS = ("state", "decided_on", "valid_from", "valid_until", "expired_on")


async def file_application(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, data: DeferralCreate
) -> DeferralApplication:
    """File an application for a child of the caller's area, inside the filing window (September) on the
    server's day; ``filed_on`` defaults to that day and must not be after it. The caller's area: the bureau
    any child, a school district the children of its hukou area, a school the children holding
    an active record there (parents file with the school district or the school); any other child is
    404. The filer sees its application (``filed_by_org``), as the child's hukou school district does."""
    settings = settings_of(ctx)
    today = today_in_china()
    filed_on = data.filed_on or today
    if filed_on > today:
        raise Problem(
            "An application cannot be filed on a future day.",
            code="filed_on_in_future",
            status=422,
            errors=[{"field": "filed_on", "code": "in_future", "message": f"after {today.isoformat()}"}],
        )
    if (filed_on if settings.simulation else today).month not in settings.deferral_window_months:
        raise Problem(
            "Applications are filed in the September window.", code="outside_filing_window", status=422
        )
    child = await children.get(session, data.child_id)
    if child is None:
        raise NotFound("No such child.", code="child_not_found")
    if not (
        principal.has_role("bureau")
        or principal.covers(child.hukou_school_district)
        or await students.has_active_record_within(
            session, principal, child_id=child.child_id, id_blind_index=child.id_blind_index
        )
    ):
        raise not_found("child")
    app = DeferralApplication(
        id=str(uuid.uuid4()),
        child_id=child.child_id,
        kind=data.kind,
        reason=data.reason,
        evidence="\n".join(data.evidence),
        filed_on=filed_on,
        filed_by_org=principal.org,
        hukou_school_district=child.hukou_school_district,
    )
    session.add(app)
    await ctx.audit.record(session, principal, "create", "deferral_application", [app.id])
    return app


async def decide(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    application_id: str,
    data: DeferralDecision,
    expected_version: int | None = None,
) -> DeferralApplication:
    """The bureau approves (with a validity period, at most one school year for a deferral) or rejects.
    ``expected_version`` (from ``If-Match``; optional, honoured when sent): 412 when the application moved
    on since, checked after the row lock."""
    app = (
        await session.execute(
            select(DeferralApplication).where(col(DeferralApplication.id) == application_id).with_for_update()
        )
    ).scalar_one_or_none()
    if app is None:
        raise NotFound("No such application.", code="application_not_found")
    if expected_version is not None:
        check_version(expected_version, app.version, DECISION_FIELDS)
    if app.state != "filed":
        raise Conflict("The application was already decided.", code="application_decided")
    if data.approve:
        if data.valid_from is None or data.valid_until is None or data.valid_until <= data.valid_from:
            raise Problem("An approval needs a validity period.", code="invalid_validity", status=422)
        if app.kind == "deferral" and data.valid_until > one_year_after(data.valid_from):
            raise Problem(
                "A deferral is granted for at most one school year: until the same date one year later.",
                code="invalid_validity",
                status=422,
            )
        app.valid_from, app.valid_until = data.valid_from, data.valid_until
    app.state = "approved" if data.approve else "rejected"
    app.decided_by, app.decided_on = principal.subject, data.on
    app.version += 1
    session.add(app)
    await ctx.audit.record(session, principal, "decide", "deferral_application", [app.id], detail=app.state)
    return app


async def publish_expired(*, session: AsyncSession, ctx: ServiceContext, today: dt.date) -> int:
    """Approved applications whose period ended before ``today``: mark each and publish DeferralExpired,
    set-based and once (the mark is the guard, so a re-run or a second replica publishes nothing new)."""
    d = DeferralApplication.__table__  # type: ignore[attr-defined]
    result = await session.execute(
        update(d)
        .where(d.c.state == "approved", d.c.expired_on.is_(None), d.c.valid_until < today)
        .values(expired_on=today, version=d.c.version + 1)
        .returning(d.c.id, d.c.kind, d.c.child_id, d.c.hukou_school_district, d.c.valid_until, d.c.version)
    )
    expired = result.all()
    if expired:
        await ctx.outbox.add_many(
            session,
            [
                (
                    DeferralExpired(
                        deferral_id=i,
                        kind=kind,
                        child_id=child_id,
                        hukou_school_district=district,
                        ended_on=until,
                    ),
                    str(i),
                    int(version),
                )
                for i, kind, child_id, district, until, version in expired
            ],
        )
    return len(expired)


async def list_applications(
    *, session: AsyncSession, principal: Principal, limit: int, after: str | None, child_id: str | None
) -> Sequence[DeferralApplication]:
    stmt = select(DeferralApplication).where(
        within_jurisdiction(
            principal, col(DeferralApplication.hukou_school_district), col(DeferralApplication.filed_by_org)
        )
    )
    if child_id:
        stmt = stmt.where(col(DeferralApplication.child_id) == child_id)
    if after:
        stmt = stmt.where(col(DeferralApplication.id) > after)  # type: ignore[operator]
    return (
        (await session.execute(stmt.order_by(col(DeferralApplication.id)).limit(limit + 1))).scalars().all()
    )  # type: ignore[arg-type]


def to_public(app: DeferralApplication, on: dt.date | None = None) -> DeferralPublic:
    in_force = None
    if on is not None:
        in_force = bool(
            app.state == "approved"
            and app.valid_from
            and app.valid_until
            and app.valid_from <= on <= app.valid_until
        )
    return DeferralPublic(
        id=app.id,
        child_id=app.child_id,
        kind=app.kind,
        reason=app.reason,
        evidence=app.evidence.split("\n"),
        filed_on=app.filed_on,
        hukou_school_district=app.hukou_school_district,
        state=app.state,
        decided_on=app.decided_on,
        valid_from=app.valid_from,
        valid_until=app.valid_until,
        expired_on=app.expired_on,
        version=app.version,
        in_force_on=on,
        in_force=in_force,
    )
