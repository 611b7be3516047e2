"""Work on an open case: persuasion attempts, attendance confirmations and the care plan of a returned student."""

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.db import utcnow
from baoxue.errors import Conflict, NotFound, Problem
from casework.cases import repository as repo
from casework.cases.models import AttendanceConfirmation, CarePlan, Case, PersuasionAttempt
from casework.cases.schemas import AttendanceCreate, CarePlanPut, PersuasionCreate
from casework.semesters import today


async def visible_case(
    session: AsyncSession, principal: Principal, case_id: str, *, lock: bool = False
) -> Case:
    """The case if the caller may see it, else 404."""
    case = await repo.get_case(session, case_id, principal, for_update=lock)
    if case is None:
        raise NotFound("No such case.")
    return case


async def log_persuasion(
    *, session: AsyncSession, principal: Principal, case_id: str, data: PersuasionCreate
) -> PersuasionAttempt:
    """Record one persuasion attempt on an open, confirmed-or-later case (409 otherwise)."""
    case = await visible_case(session, principal, case_id, lock=True)
    if case.state in ("suspected", "closed"):
        raise Conflict(
            f"Persuasion is logged on confirmed, open cases; this one is '{case.state}'.",
            code="case_not_in_persuasion",
            state=case.state,
        )
    attempt = PersuasionAttempt(case_id=case.id, created_by=principal.subject, **data.model_dump())
    session.add(attempt)
    case.updated_at = utcnow()
    await session.flush()
    return attempt


async def confirm_attendance(
    *, session: AsyncSession, principal: Principal, case_id: str, data: AttendanceCreate
) -> tuple[AttendanceConfirmation, int]:
    """The school confirms days of attendance of a returned child (counted from the return date) or of
    a suspected dropout it finds in school (counted from the case's opening: an unfounded closure needs
    them too). Returns the confirmation and the total days confirmed since then. The closure adds up the
    periods' days, so a period may neither start before then (409 ``attendance_before_return`` /
    ``attendance_before_opening``), overlap one already confirmed since then (409
    ``attendance_overlaps``, naming that period), nor end after today (422 ``attendance_in_future``)."""
    case = await visible_case(session, principal, case_id, lock=True)
    since = await repo.attendance_since(session, case)
    if since is None:
        raise Conflict(
            "Attendance is confirmed for returned cases, or for suspected ones closed as unfounded.",
            code="case_not_returned",
            state=case.state,
        )
    if data.from_date < since:
        if case.state == "returned":
            raise Conflict("The period starts before the child returned.", code="attendance_before_return")
        raise Conflict(
            "The period starts before the case was opened.",
            code="attendance_before_opening",
            opened_on=since.isoformat(),
        )
    if data.to_date > today():
        raise Problem(
            "Attendance is confirmed for days that have passed: the period ends after today.",
            status=422,
            code="attendance_in_future",
            errors=[{"field": "to_date", "code": "in_future"}],
        )
    confirmed = await repo.overlapping_attendance(
        session, case.id, since=since, from_date=data.from_date, to_date=data.to_date
    )
    if confirmed is not None:
        raise Conflict(
            "The period overlaps one already confirmed since then; its days are counted once.",
            code="attendance_overlaps",
            confirmed_from=confirmed.from_date.isoformat(),
            confirmed_to=confirmed.to_date.isoformat(),
        )
    row = AttendanceConfirmation(case_id=case.id, confirmed_by=principal.subject, **data.model_dump())
    session.add(row)
    await session.flush()
    return row, await repo.attendance_days(session, case.id, since)


async def put_care_plan(
    *, session: AsyncSession, principal: Principal, case_id: str, data: CarePlanPut
) -> CarePlan:
    """Create or replace the follow-up care plan of a returned student (returned, or closed as returned)."""
    case = await visible_case(session, principal, case_id, lock=True)
    if not (case.state == "returned" or case.closure_reason == "returned"):
        raise Conflict("A care plan is for a returned student.", code="case_not_returned", state=case.state)
    plan = await repo.get_care_plan(session, case.id)
    if plan is None:
        plan = CarePlan(case_id=case.id, updated_by=principal.subject, **data.model_dump())
        session.add(plan)
    else:
        for name, value in data.model_dump().items():
            setattr(plan, name, value)
        plan.version += 1
        plan.updated_by, plan.updated_at = principal.subject, utcnow()
    await session.flush()
    return plan
