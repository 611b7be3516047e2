"""Transfers (转学): requested by the sending school, approved by both sides, completed within a limit.

The record follows the person (籍随人走): a completed transfer inside the district moves the record to
the receiving school; a receiving school outside the directory closes it as ``transferred_out``. A
transfer not completed within the limit (10 working days by default) is flagged as hanging by the sweep
and raises a suspected dropout (``transfer_hanging``). Only an enrolled record transfers: a transition
away from ``enrolled`` (a dropout, graduation, death, suspension) cancels its open transfer
(:func:`enrollment.students.transitions.apply_status`), and an approval while the record is not enrolled
(a transfer stored before that) is a 409 ``invalid_transition``.

Locks: the record before its transfer, as every transition does (it locks the record, then cancels the
transfers), so an approval or the sweep and a concurrent dropout wait for each other instead of
deadlocking, and neither overwrites the other's state.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.concurrency import check_version
from baoxue.contracts.enrollment import StudentStatusChanged
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.service import ServiceContext
from baoxue.workdays import default_calendar
from enrollment.settings import settings_of
from enrollment.signals.service import raise_for_student
from enrollment.students import repository
from enrollment.students.models import StudentRecord, StudentTransfer
from enrollment.students.repository import OPEN_TRANSFER_STATES
from enrollment.students.service import student_event
from enrollment.students.transitions import apply_status, load_writable
from enrollment.visibility import ensure_visible

# What an approval, a rejection or the sweep changes: named by a 412 on a stale If-Match.
TRANSFER_FIELDS = ("state", "sending_approved", "receiving_approved", "hanging_since", "completed_on")


def transfer_workdays(ctx: ServiceContext) -> int:
    return settings_of(ctx).transfer_workdays


async def request_transfer(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    student_id: str,
    to_school: str,
    requested_on: dt.date,
    expected_version: int | None = None,
) -> StudentTransfer:
    """Open a transfer of an enrolled student; due after the configured number of working days.
    ``expected_version``: the student record's version from ``If-Match`` (optional, honoured when sent)."""
    record = await load_writable(session, principal, student_id, expected_version=expected_version)
    if record.status != "enrolled":
        raise Conflict("Only an enrolled student can be transferred.", code="invalid_transition")
    if to_school == record.school_code:
        raise Problem(
            "The receiving school is the current school.", code="transfer_to_same_school", status=422
        )
    _ensure_receiving_school(ctx, to_school)
    if await repository.open_transfer(session, record.id) is not None:
        raise Conflict("A transfer of this student is already open.", code="transfer_already_open")
    due = default_calendar().add_workdays_lenient(requested_on, transfer_workdays(ctx)).due
    transfer = StudentTransfer(
        id=str(uuid.uuid4()),
        student_id=record.id,
        from_school=record.school_code,
        to_school=to_school,
        requested_on=requested_on,
        due_on=due,
    )
    session.add(transfer)
    await ctx.audit.record(session, principal, "create", "student_transfer", [transfer.id])
    return transfer


async def approve_transfer(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    transfer_id: str,
    side: str,
    on: dt.date,
    expected_version: int | None = None,
) -> StudentTransfer:
    """One side approves (the sending school's chain for 'sending', the receiving school's for 'receiving');
    with both approvals the transfer completes — late completion also clears a hanging flag.
    ``expected_version``: the transfer's version from ``If-Match`` (optional, honoured when sent)."""
    record = await _lock_record_of(session, transfer_id)
    transfer = await _load(session, principal, transfer_id, expected_version)
    if transfer.state not in OPEN_TRANSFER_STATES:
        raise Conflict("The transfer is closed.", code="transfer_closed")
    external = _ensure_receiving_school(ctx, transfer.to_school)
    if side == "sending":
        ensure_visible(principal, transfer.from_school, resource="transfer")
    elif external:
        # A receiving school outside the district answers outside Baoxue; the bureau records its consent.
        if not principal.has_role("bureau"):
            raise NotFound("No such transfer.", code="transfer_not_found")
    else:
        ensure_visible(principal, transfer.to_school, resource="transfer")
    if record is None or record.status != "enrolled":
        raise Conflict(
            "Only an enrolled student can be transferred.",
            code="invalid_transition",
            current_status=record.status if record is not None else None,
        )
    if side == "sending":
        transfer.sending_approved_by = principal.subject
    else:
        transfer.receiving_approved_by = principal.subject
    transfer.version += 1
    session.add(transfer)
    await ctx.audit.record(session, principal, "approve", "student_transfer", [transfer.id], detail=side)
    if transfer.sending_approved_by and transfer.receiving_approved_by:
        await _complete(
            session=session,
            ctx=ctx,
            principal=principal,
            transfer=transfer,
            record=record,
            on=on,
            external=external,
        )
    return transfer


def _ensure_receiving_school(ctx: ServiceContext, to_school: str) -> bool:
    """True for a school outside the district (a code neither in the directory nor in the district's code
    space), False for a school of the directory; 422 ``unknown_school`` (as registration answers) for any
    other organisation of the directory (a town, a school district, a department) and for a code of this
    district that is not in the directory."""
    org = ctx.directory.get(to_school)
    if org is None and not to_school.startswith(ctx.directory.district_code):
        return True
    if org is None or org.kind != "school":
        raise Problem(
            "The receiving school is not a school in the directory.", code="unknown_school", status=422
        )
    return False


async def _lock_record_of(session: AsyncSession, transfer_id: str) -> StudentRecord | None:
    """The transfer's record, locked before the transfer is (see the module's note on locks)."""
    student_id = await repository.student_of_transfer(session, transfer_id)
    return await repository.get_for_update(session, student_id) if student_id is not None else None


async def _complete(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    transfer: StudentTransfer,
    record: StudentRecord,
    on: dt.date,
    external: bool,
) -> None:
    transfer.state = "completed"
    transfer.completed_on = on
    if external:
        await apply_status(
            session=session,
            ctx=ctx,
            principal=principal,
            record=record,
            status="transferred_out",
            on=on,
            reason="transfer_out_of_district",
        )
        return
    record.school_code = transfer.to_school
    record.version += 1
    session.add(record)
    event = student_event(StudentStatusChanged, record, previous=record.status, reason="transfer_completed")
    await ctx.outbox.add(session, event, subject=record.id, sequence=record.version)


async def _load(
    session: AsyncSession, principal: Principal, transfer_id: str, expected_version: int | None
) -> StudentTransfer:
    """The transfer, locked, if either school is inside the caller's jurisdiction (404 otherwise); 412
    when ``expected_version`` was sent and the transfer moved on (checked after the row lock)."""
    transfer = await repository.get_transfer(session, transfer_id)
    if transfer is None:
        raise NotFound("No such transfer.", code="transfer_not_found")
    ensure_visible(principal, transfer.from_school, transfer.to_school, resource="transfer")
    if expected_version is not None:
        check_version(expected_version, transfer.version, TRANSFER_FIELDS)
    return transfer


async def reject_transfer(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    transfer_id: str,
    expected_version: int | None = None,
) -> StudentTransfer:
    """Either side refuses: the transfer closes and the student stays where the record is.
    ``expected_version``: the transfer's version from ``If-Match`` (optional, honoured when sent)."""
    transfer = await _load(session, principal, transfer_id, expected_version)
    if transfer.state not in OPEN_TRANSFER_STATES:
        raise Conflict("The transfer is closed.", code="transfer_closed")
    transfer.state = "rejected"
    transfer.version += 1
    session.add(transfer)
    await ctx.audit.record(session, principal, "reject", "student_transfer", [transfer.id])
    return transfer


async def flag_hanging_transfers(*, session: AsyncSession, ctx: ServiceContext, today: dt.date) -> int:
    """Flag every transfer past its due date as hanging and raise ``transfer_hanging`` once for each."""
    flagged = 0
    for transfer in await repository.overdue_transfers(session, today):
        record = await repository.get_for_update(session, transfer.student_id)  # the record first
        await session.refresh(transfer, with_for_update=True)  # a dropout may have cancelled it meanwhile
        if transfer.state != "requested":
            continue
        transfer.state = "hanging"
        transfer.hanging_since = today
        transfer.version += 1
        session.add(transfer)
        if record is not None:
            await raise_for_student(
                session=session,
                ctx=ctx,
                record=record,
                signal="transfer_hanging",
                dedupe_key=f"transfer_hanging:{transfer.id}",
                detected_on=today,
            )
        flagged += 1
    return flagged


async def flag_expired_suspensions(*, session: AsyncSession, ctx: ServiceContext, today: dt.date) -> int:
    """A suspension whose end passed without resumption is a suspected dropout (raised once per suspension)."""
    raised = 0
    for record in await repository.expired_suspensions(session, today):
        key = f"suspension_expired:{record.id}:{record.suspended_until}"
        if await raise_for_student(
            session=session,
            ctx=ctx,
            record=record,
            signal="suspension_expired",
            dedupe_key=key,
            detected_on=today,
        ):
            raised += 1
    return raised
