"""Registering many student records in one call: per-record outcomes, set-based writes.

Each record is checked on its own (school in the directory and inside the caller's jurisdiction, valid
student and ID numbers, a G number matching the ID); the survivors are checked against the database in
two set-based look-ups (student numbers taken, children with an active record) and against each other
(the same child or number twice in one batch); every record still standing is written with one
multi-row ``INSERT … ON CONFLICT DO NOTHING … RETURNING`` (a concurrent registration that wins a race
is caught by the unique indexes and reported for that record alone); records whose child was not in
the read model at the look-up are linked again set-based after the insert, and the look-up is made
under :func:`enrollment.students.repository.hold_link_lock`, so a child snapshot applied meanwhile is
never missed by both sides; then one StudentRegistered each with one ``outbox.add_many`` and one audit
entry. A refused record never stops the others.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.contracts.enrollment import StudentRegistered
from baoxue.db import conflict_insert, utcnow
from baoxue.errors import problem_title
from baoxue.pii.citizen_id import normalise_id_number, parse_id_number, validate_student_number
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from enrollment.children.models import ChildView
from enrollment.students import repository
from enrollment.students.models import ACTIVE_STATUSES, StudentRecord
from enrollment.students.schemas import BatchOutcome, StudentCreate

S = StudentRecord.__table__  # type: ignore[attr-defined]
C = ChildView.__table__  # type: ignore[attr-defined]
LOOKUP_CHUNK = 1000  # bound parameters per IN list (SQLite's limit is 32,766; PostgreSQL's 65,535)
INSERT_CHUNK = 500  # rows per multi-row INSERT (19 columns: 9,500 parameters)


@dataclass
class _Candidate:
    index: int
    data: StudentCreate
    number: str
    id_number: str
    blind: str = ""
    number_index: str = ""
    row: dict[str, Any] = field(default_factory=dict)


def _refused(index: int, code: str, status: int, errors: list[dict[str, str]] | None = None) -> BatchOutcome:
    return BatchOutcome(
        index=index,
        outcome="refused",
        status=status,
        code=code,
        title=problem_title(code, "en"),
        title_zh=problem_title(code, "zh"),
        errors=errors or [],
    )


def _check(
    ctx: ServiceContext, principal: Principal, index: int, data: StudentCreate
) -> _Candidate | BatchOutcome:
    """The checks of one record that need no database (the same as the single POST makes)."""
    school = ctx.directory.get(data.school_code)
    if school is None or school.kind != "school":
        return _refused(index, "unknown_school", 422)
    if not principal.covers(data.school_code):
        return _refused(index, "outside_jurisdiction", 403)
    number = normalise_id_number(data.student_number)
    reasons = validate_student_number(number)
    if reasons:
        errors = [{"field": "student_number", "code": r, "message": r} for r in reasons]
        return _refused(index, "invalid_student_number", 422, errors)
    check = parse_id_number(data.id_number)
    if not check.ok or check.facts is None:
        errors = [{"field": "id_number", "code": r, "message": r} for r in check.errors]
        return _refused(index, "invalid_id_number", 422, errors)
    id_number = check.facts.id_number
    if number.startswith("G") and number[1:] != id_number:
        return _refused(index, "student_number_mismatch", 422)
    return _Candidate(index=index, data=data, number=number, id_number=id_number)


async def _existing(session: AsyncSession, column: Any, values: list[str], *extra: Any) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(values), LOOKUP_CHUNK):
        chunk = values[start : start + LOOKUP_CHUNK]
        rows = await session.execute(select(column).where(column.in_(chunk), *extra))
        found.update(str(v) for (v,) in rows.all())
    return found


async def register_batch(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, records: list[StudentCreate]
) -> list[BatchOutcome]:
    """Per-record outcomes in the order of ``records``: created (with the record's id) or refused (a problem code)."""
    outcomes: dict[int, BatchOutcome] = {}
    candidates: list[_Candidate] = []
    for i, data in enumerate(records):
        checked = _check(ctx, principal, i, data)
        if isinstance(checked, BatchOutcome):
            outcomes[i] = checked
        else:
            checked.blind = ctx.blind_index.of(checked.id_number)
            checked.number_index = ctx.blind_index.of(checked.number)
            candidates.append(checked)

    taken = await _existing(session, S.c.student_number_index, [c.number_index for c in candidates])
    active = await _existing(
        session, S.c.id_blind_index, [c.blind for c in candidates], S.c.status.in_(ACTIVE_STATUSES)
    )
    seen_numbers: set[str] = set()
    seen_children: set[str] = set()
    standing: list[_Candidate] = []
    for c in candidates:
        if c.number_index in taken:
            outcomes[c.index] = _refused(c.index, "student_number_taken", 409)
        elif c.blind in active:
            outcomes[c.index] = _refused(c.index, "active_record_exists", 409)
        elif c.number_index in seen_numbers or c.blind in seen_children:
            outcomes[c.index] = _refused(c.index, "duplicate_in_batch", 409)
        else:
            seen_numbers.add(c.number_index)
            seen_children.add(c.blind)
            standing.append(c)

    if standing:
        await repository.hold_link_lock(session, exclusive=False)  # before the children are looked up
    linked: dict[str, tuple[str, str | None]] = {}
    blinds = [c.blind for c in standing]
    for start in range(0, len(blinds), LOOKUP_CHUNK):
        rows = await session.execute(
            select(C.c.id_blind_index, C.c.child_id, C.c.hukou_school_district).where(
                C.c.id_blind_index.in_(blinds[start : start + LOOKUP_CHUNK])
            )
        )
        for blind, child_id, district in rows.all():
            linked.setdefault(str(blind), (str(child_id), district))

    now, today = utcnow(), today_in_china()
    for c in standing:
        child_id, district = linked.get(c.blind, (None, None))
        c.row = {
            "id": str(uuid.uuid4()),
            "student_number_kind": c.number[0],
            "student_number_enc": ctx.cipher.encrypt(c.number),
            "student_number_index": c.number_index,
            "id_number_enc": ctx.cipher.encrypt(c.id_number),
            "id_blind_index": c.blind,
            "child_id": child_id,
            "school_code": c.data.school_code,
            "hukou_school_district": district,
            "grade": c.data.grade,
            "status": "enrolled",
            "status_since": c.data.enrolled_on or today,
            "status_reason": None,
            "suspended_until": None,
            "suspension_extended": False,
            "source": "local",
            "version": 1,
            "pushed_version": 0,
            "created_at": now,
            "updated_at": now,
        }
    inserted: set[str] = set()
    for start in range(0, len(standing), INSERT_CHUNK):
        chunk = [c.row for c in standing[start : start + INSERT_CHUNK]]
        result = await session.execute(
            conflict_insert(ctx.db.dialect, S).values(chunk).on_conflict_do_nothing().returning(S.c.id)
        )
        inserted.update(str(v) for (v,) in result.all())
    created = [c for c in standing if c.row["id"] in inserted]
    # A child snapshot applied between the look-up and the insert: link now, in this transaction.
    relinked = await repository.link_unlinked(
        session, [c.blind for c in created if c.row["child_id"] is None]
    )
    for c in created:
        mine = relinked.pop(c.row["id"], None)
        if mine is not None:  # its registration event carries the child
            c.row["child_id"], c.row["hukou_school_district"], c.row["version"] = mine[1], mine[5], mine[4]
    await repository.publish_linked(session, ctx, list(relinked.values()))  # older records of these IDs
    for c in standing:
        if c.row["id"] in inserted:
            outcomes[c.index] = BatchOutcome(index=c.index, outcome="created", status=201, id=c.row["id"])
        else:  # lost a race with a concurrent registration: a unique index refused it
            outcomes[c.index] = _refused(c.index, "concurrent_registration", 409)
    if created:
        await ctx.outbox.add_many(
            session,
            [
                (
                    StudentRegistered(
                        student_id=c.row["id"],
                        child_id=c.row["child_id"],
                        id_blind_index=c.blind,
                        school_code=c.row["school_code"],
                        grade=c.row["grade"],
                        status="enrolled",
                    ),
                    c.row["id"],
                    c.row["version"],
                )
                for c in created
            ],
        )
        await ctx.audit.record(
            session, principal, "create", "student_record", [c.row["id"] for c in created], detail="batch"
        )
    return [outcomes[i] for i in range(len(records))]
