"""Registering student records and reading them (masked unless permitted and a purpose is stated)."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from baoxue.auth.jurisdiction import ensure_writable
from baoxue.auth.principal import Principal
from baoxue.contracts.enrollment import StudentRecordEvent, StudentRegistered, StudentStatusChanged
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.pii.citizen_id import normalise_id_number, parse_id_number, validate_student_number
from baoxue.pii.masking import mask_id_number
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from enrollment.children import repository as children
from enrollment.students import repository
from enrollment.students.models import StudentRecord
from enrollment.students.schemas import StudentCreate, StudentPublic


async def register_student(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, data: StudentCreate
) -> StudentRecord:
    """Create a 学籍 for a child at a school inside the caller's jurisdiction.

    Promises: the student number is valid for its kind (and a G number is the same person's ID); the
    child has no other active record (409 ``active_record_exists``, enforced by a partial unique index,
    so two concurrent requests cannot both succeed); the record is linked to the read-model child when
    the ID's blind index is known, also when the child's snapshot is applied while this request runs
    (:func:`repository.hold_link_lock`); StudentRegistered is published in the same transaction.
    """
    school = ctx.directory.get(data.school_code)
    if school is None or school.kind != "school":
        raise Problem("The school code is not a school in the directory.", code="unknown_school", status=422)
    ensure_writable(principal, data.school_code, data.school_code)
    number = normalise_id_number(data.student_number)
    reasons = validate_student_number(number)
    if reasons:
        raise Problem(
            "The student number is not valid.",
            code="invalid_student_number",
            status=422,
            errors=[{"field": "student_number", "code": r, "message": r} for r in reasons],
        )
    check = parse_id_number(data.id_number)
    if not check.ok or check.facts is None:
        raise Problem(
            "The ID number is not valid.",
            code="invalid_id_number",
            status=422,
            errors=[{"field": "id_number", "code": r, "message": r} for r in check.errors],
        )
    id_number = check.facts.id_number
    if number.startswith("G") and number[1:] != id_number:
        raise Problem(
            "A G student number must be G followed by the student's own ID number.",
            code="student_number_mismatch",
            status=422,
        )
    blind = ctx.blind_index.of(id_number)
    number_index = ctx.blind_index.of(number)
    if await repository.by_number_index(session, number_index) is not None:
        raise Conflict("This student number is already registered.", code="student_number_taken")
    await _refuse_second_active(session, blind)
    await repository.hold_link_lock(session, exclusive=False)  # before the child is looked up
    child = await children.by_blind_index(session, blind)
    on = data.enrolled_on or today_in_china()
    record = StudentRecord(
        id=str(uuid.uuid4()),
        student_number_kind=number[0],
        student_number_enc=ctx.cipher.encrypt(number),
        student_number_index=number_index,
        id_number_enc=ctx.cipher.encrypt(id_number),
        id_blind_index=blind,
        child_id=child.child_id if child else None,
        school_code=data.school_code,
        hukou_school_district=child.hukou_school_district if child else None,
        grade=data.grade,
        status="enrolled",
        status_since=on,
    )
    try:
        async with session.begin_nested():
            session.add(record)
            await session.flush()
    except IntegrityError:
        raise _second_active() from None
    if record.child_id is None:
        # A child snapshot applied since the look-up: link now, in this transaction (see hold_link_lock).
        # Its registration event carries the child; an older record of this ID linked too is published.
        linked = await repository.link_unlinked(session, [blind])
        mine = linked.pop(record.id, None)
        if mine is not None:
            set_committed_value(record, "child_id", mine[1])
            set_committed_value(record, "hukou_school_district", mine[5])
            set_committed_value(record, "version", mine[4])
        await repository.publish_linked(session, ctx, list(linked.values()))
    await ctx.outbox.add(
        session, student_event(StudentRegistered, record), subject=record.id, sequence=record.version
    )
    await ctx.audit.record(session, principal, "create", "student_record", [record.id])
    return record


async def _refuse_second_active(session: AsyncSession, blind: str) -> None:
    if await repository.active_for_child(session, blind) is not None:
        raise _second_active()


def _second_active() -> Conflict:
    return Conflict(
        "The child already has an active student record; transfer or close it first (一人一籍).",
        code="active_record_exists",
    )


def student_event(
    cls: type[StudentRecordEvent],
    record: StudentRecord,
    *,
    previous: str | None = None,
    reason: str | None = None,
) -> StudentRecordEvent:
    base = {
        "student_id": record.id,
        "child_id": record.child_id,
        "id_blind_index": record.id_blind_index,
        "school_code": record.school_code,
        "grade": record.grade,
        "status": record.status,
    }
    if cls is StudentStatusChanged:
        return StudentStatusChanged(**base, previous_status=previous or record.status, reason=reason)  # type: ignore[arg-type]
    return cls(**base)  # type: ignore[arg-type]


async def get_student(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, student_id: str
) -> StudentPublic:
    """One record the caller may see (404 otherwise); the read is audited."""
    record = await repository.get_visible(session, principal, student_id)
    if record is None:
        raise NotFound("No such student record.", code="student_not_found")
    await ctx.audit.record(session, principal, "read", "student_record", [record.id])
    return to_public(ctx, principal, record)


def to_public(
    ctx: ServiceContext, principal: Principal, record: StudentRecord, *, masked: bool = False
) -> StudentPublic:
    """The record for a response: identifiers masked unless the caller may unmask and stated a purpose."""
    number = ctx.cipher.decrypt(record.student_number_enc)
    id_number = ctx.cipher.decrypt(record.id_number_enc)
    if masked or not (principal.can("student:unmask") and principal.purpose):
        id_number = mask_id_number(id_number)
        number = number[0] + (mask_id_number(number[1:]) if len(number) == 19 else "*" * (len(number) - 1))
    return StudentPublic(
        id=record.id,
        student_number=number,
        id_number=id_number,
        child_id=record.child_id,
        school_code=record.school_code,
        hukou_school_district=record.hukou_school_district,
        grade=record.grade,
        status=record.status,
        status_since=record.status_since,
        status_reason=record.status_reason,
        suspended_until=record.suspended_until,
        suspension_extended=record.suspension_extended,
        version=record.version,
    )
