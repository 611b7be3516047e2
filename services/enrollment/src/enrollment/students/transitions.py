"""Status transitions of a 学籍: suspension (休学) and its one extension, resumption (复学), dropout, graduation.

Each transition checks the caller's jurisdiction over the record, bumps its version, is audited, and
publishes StudentStatusChanged in the same transaction. A dropout keeps the record and raises a
DropoutSuspected signal. A transition that closes the record (dropout, graduation, death, transfer out)
cancels its open transfer, with the reason (a closed record cannot move to another school).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.concurrency import check_version
from baoxue.contracts.enrollment import StudentStatusChanged
from baoxue.db import utcnow
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.service import ServiceContext
from enrollment.signals.service import raise_for_student
from enrollment.students import repository
from enrollment.students.models import StudentRecord
from enrollment.students.service import _second_active, student_event
from enrollment.visibility import ensure_visible


def one_year_after(day: dt.date) -> dt.date:
    """The same calendar date one year later; 29 February goes to 28 February in a common year. A
    suspension (and its one extension) lasts at most until that day."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


# What a transition may change: named in a 412 (the record keeps no field history to name fewer).
TRANSITION_FIELDS = ("status", "status_since", "status_reason", "suspended_until", "suspension_extended")


async def load_writable(
    session: AsyncSession, principal: Principal, student_id: str, *, expected_version: int | None = None
) -> StudentRecord:
    """The record, locked, if it belongs to a school inside the caller's jurisdiction (404 otherwise).

    ``expected_version`` (from ``If-Match``; optional, honoured when sent): 412 when the record moved on.
    Checked after the row lock, so two clients sending the same ETag cannot both pass."""
    record = await repository.get_for_update(session, student_id)
    if record is None:
        raise NotFound("No such student record.", code="student_not_found")
    ensure_visible(principal, record.school_code, resource="student record")
    if expected_version is not None:
        check_version(expected_version, record.version, TRANSITION_FIELDS)
    return record


async def apply_status(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal | None,
    record: StudentRecord,
    status: str,
    on: dt.date,
    reason: str | None,
    expected_version: int | None = None,
) -> StudentRecord:
    """Move ``record`` to ``status`` (no rule checks here: callers check them) and publish the change; a
    status other than ``enrolled`` cancels the record's open transfers (``closed_reason``
    ``student_<status>``): only an enrolled student transfers, so a transfer left open by a dropout,
    graduation, death or suspension could only hang and raise a false ``transfer_hanging`` (a suspended
    student resumed asks again)."""
    previous = record.status
    record.status = status
    record.status_since = on
    record.status_reason = reason
    record.version += 1
    record.updated_at = utcnow()
    session.add(record)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise _second_active() from None
    if status != "enrolled":  # after the flush: a transfer completing this record is closed already
        await repository.cancel_open_transfers(session, record.id, reason=f"student_{status}", on=on)
    event = student_event(StudentStatusChanged, record, previous=previous, reason=reason)
    await ctx.outbox.add(session, event, subject=record.id, sequence=record.version)
    if principal is not None:
        await ctx.audit.record(
            session, principal, "update", "student_record", [record.id], detail=f"status:{status}"
        )
    return record


def _require(record: StudentRecord, *allowed: str) -> None:
    if record.status not in allowed:
        raise Conflict(
            f"Not allowed while the record is '{record.status}'.",
            code="invalid_transition",
            current_status=record.status,
        )


async def suspend(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    student_id: str,
    starts_on: dt.date,
    until: dt.date,
    reason: str,
    expected_version: int | None = None,
) -> StudentRecord:
    """休学: an enrolled student is suspended until ``until``, at most the same date one year after
    ``starts_on`` (:func:`one_year_after`)."""
    record = await load_writable(session, principal, student_id, expected_version=expected_version)
    _require(record, "enrolled")
    if until <= starts_on or until > one_year_after(starts_on):
        raise Problem("A suspension lasts at most one year.", code="suspension_too_long", status=422)
    record.suspended_until = until
    record.suspension_extended = False
    return await apply_status(
        session=session,
        ctx=ctx,
        principal=principal,
        record=record,
        status="suspended",
        on=starts_on,
        reason=reason,
    )


async def extend_suspension(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    student_id: str,
    until: dt.date,
    expected_version: int | None = None,
) -> StudentRecord:
    """The one allowed extension of a suspension, by at most one more year: until the same date one year
    after the current end at the latest (:func:`one_year_after`)."""
    record = await load_writable(session, principal, student_id, expected_version=expected_version)
    _require(record, "suspended")
    assert record.suspended_until is not None
    if record.suspension_extended:
        raise Conflict("A suspension may be extended only once.", code="suspension_already_extended")
    if until <= record.suspended_until or until > one_year_after(record.suspended_until):
        raise Problem("An extension lasts at most one more year.", code="suspension_too_long", status=422)
    record.suspended_until = until
    record.suspension_extended = True
    record.version += 1
    session.add(record)
    event = student_event(StudentStatusChanged, record, previous="suspended", reason="suspension_extended")
    await ctx.outbox.add(session, event, subject=record.id, sequence=record.version)
    await ctx.audit.record(
        session, principal, "update", "student_record", [record.id], detail="suspension_extended"
    )
    return record


async def resume(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    student_id: str,
    on: dt.date,
    reason: str | None,
    expected_version: int | None = None,
) -> StudentRecord:
    """复学: a suspended student, or a dropout who came back, is enrolled again (one active record still)."""
    record = await load_writable(session, principal, student_id, expected_version=expected_version)
    _require(record, "suspended", "dropped_out")
    record.suspended_until = None
    return await apply_status(
        session=session,
        ctx=ctx,
        principal=principal,
        record=record,
        status="enrolled",
        on=on,
        reason=reason or "resumed",
    )


async def drop_out(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    student_id: str,
    on: dt.date,
    reason: str | None,
    expected_version: int | None = None,
) -> StudentRecord:
    """辍学: the record is kept with status dropped_out, and a suspected dropout is raised for casework."""
    record = await load_writable(session, principal, student_id, expected_version=expected_version)
    _require(record, "enrolled", "suspended")
    await apply_status(
        session=session,
        ctx=ctx,
        principal=principal,
        record=record,
        status="dropped_out",
        on=on,
        reason=reason,
    )
    await raise_for_student(
        session=session,
        ctx=ctx,
        record=record,
        signal="dropped_out_status",
        dedupe_key=f"dropped_out_status:{record.id}:{record.version}",
        detected_on=on,
    )
    return record


async def graduate(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    student_id: str,
    on: dt.date,
    expected_version: int | None = None,
) -> StudentRecord:
    """毕业: an enrolled student graduates; the record stays."""
    record = await load_writable(session, principal, student_id, expected_version=expected_version)
    _require(record, "enrolled")
    return await apply_status(
        session=session,
        ctx=ctx,
        principal=principal,
        record=record,
        status="graduated",
        on=on,
        reason="graduated",
    )
