"""Placements of disabled children (mode, receiving school, teaching plan, a 学籍) and the home-teaching log."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.principal import Principal
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.semesters import order, semester_of, semesters_between
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from enrollment.children import repository as children
from enrollment.placements.models import Placement, TeachingSession
from enrollment.placements.schemas import PlacementCreate, SessionCreate, TermLog
from enrollment.students.models import ACTIVE_STATUSES, StudentRecord
from enrollment.visibility import ensure_visible


async def place(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, data: PlacementCreate
) -> Placement:
    """Place a child: the receiving school must be in the caller's jurisdiction and hold the child's active
    record (so a placement always comes with a 学籍)."""
    ensure_visible(principal, data.receiving_school, resource="school")
    child = await children.get(session, data.child_id)
    if child is None:
        raise NotFound("No such child.", code="child_not_found")
    record = (
        await session.execute(select(StudentRecord).where(col(StudentRecord.id) == data.student_id))
    ).scalar_one_or_none()
    if (
        record is None
        or record.school_code != data.receiving_school
        or record.status not in ACTIVE_STATUSES
        or (record.child_id is not None and record.child_id != child.child_id)
        or (child.id_blind_index is not None and record.id_blind_index != child.id_blind_index)
    ):
        raise Problem(
            "The placement needs the child's active record at the receiving school.",
            code="unknown_student",
            status=422,
        )
    placement = Placement(
        id=str(uuid.uuid4()),
        child_id=child.child_id,
        mode=data.mode,
        receiving_school=data.receiving_school,
        student_id=record.id,
        teaching_plan=data.teaching_plan,
        planned_sessions_per_term=data.planned_sessions_per_term,
        hukou_school_district=child.hukou_school_district,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
    )
    session.add(placement)
    await ctx.audit.record(session, principal, "create", "placement", [placement.id])
    return placement


async def _visible(session: AsyncSession, principal: Principal, placement_id: str) -> Placement:
    p = (
        await session.execute(select(Placement).where(col(Placement.id) == placement_id))
    ).scalar_one_or_none()
    if p is None:
        raise NotFound("No such placement.", code="placement_not_found")
    ensure_visible(principal, p.receiving_school, p.hukou_school_district, resource="placement")
    return p


async def log_session(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    placement_id: str,
    data: SessionCreate,
) -> None:
    """Record one delivered home-teaching session (one per day and placement), audited.

    ``held_on`` is not after today (China's day: 422 ``session_in_future``) and lies in the placement's
    period (422 ``session_outside_placement``); ``term`` is the semester of the school calendar that
    contains ``held_on`` (422 ``session_term_mismatch``; a day of the summer break is in no term)."""
    p = await _visible(session, principal, placement_id)
    ensure_visible(principal, p.receiving_school, resource="placement")
    if p.mode != "home_delivery":
        raise Problem(
            "Only home-delivered teaching keeps a session log.", code="not_home_delivery", status=422
        )
    _check_session_dates(ctx, p, data)
    row = TeachingSession(
        placement_id=p.id,
        term=data.term,
        held_on=data.held_on,
        teacher_ref=data.teacher_ref,
        minutes=data.minutes,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise Conflict("A session on this day is already logged.", code="session_already_logged") from None
    await ctx.audit.record(
        session, principal, "create", "teaching_session", [str(row.id)], detail=f"placement:{p.id}"
    )


def _check_session_dates(ctx: ServiceContext, p: Placement, data: SessionCreate) -> None:
    today = today_in_china()
    if data.held_on > today:
        raise _session_problem(
            "A session cannot be logged for a future day.", "session_in_future", "held_on", f"after {today}"
        )
    if data.held_on < p.starts_on or (p.ends_on is not None and data.held_on > p.ends_on):
        period = f"{p.starts_on} to {p.ends_on or 'open'}"
        raise _session_problem(
            "The session day lies outside the placement's period.",
            "session_outside_placement",
            "held_on",
            f"outside {period}",
        )
    term = semester_of(data.held_on, ctx.settings)
    if term != data.term:
        raise _session_problem(
            "The term does not contain the session day.",
            "session_term_mismatch",
            "term",
            f"{data.held_on} is in {term}" if term else f"{data.held_on} is in the summer break",
        )


def _session_problem(detail: str, code: str, field: str, message: str) -> Problem:
    return Problem(detail, code=code, status=422, errors=[{"field": field, "code": code, "message": message}])


async def term_log(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, placement_id: str
) -> list[TermLog]:
    """Planned against delivered sessions for every term (semester of the district's school calendar)
    from the placement's start to its end, or to today (China's day) while it runs, in calendar order: a
    term without a session is listed with 0 delivered. A term a session was logged under outside that
    span is listed too, so nothing delivered is left out."""
    p = await _visible(session, principal, placement_id)
    rows = await session.execute(
        select(col(TeachingSession.term), func.count())
        .where(col(TeachingSession.placement_id) == p.id)
        .group_by(col(TeachingSession.term))
    )
    delivered = {str(term): int(n) for term, n in rows.all()}
    today = today_in_china()
    last = min(p.ends_on, today) if p.ends_on is not None else today
    terms = set(semesters_between(p.starts_on, last, ctx.settings)) | set(delivered)
    return [
        TermLog(
            term=term,
            planned=p.planned_sessions_per_term,
            delivered=delivered.get(term, 0),
            shortfall=max(0, p.planned_sessions_per_term - delivered.get(term, 0)),
        )
        for term in sorted(terms, key=order)
    ]
