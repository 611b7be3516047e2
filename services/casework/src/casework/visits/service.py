"""The rules of home visits: idempotent creates by client id, evidence checks, conditional updates, rosters."""

import datetime as dt
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.auth.jurisdiction import ensure_writable
from baoxue.concurrency import apply_changes
from baoxue.contracts.casework import RosterSet, VisitRecorded
from baoxue.db import utcnow
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.idempotency import KeyProbe, request_fingerprint
from baoxue.service import ServiceContext
from casework.cases.service import settings_of
from casework.census import repository as census_repo
from casework.semesters import bounds, semester_of, today
from casework.visits import repository as repo
from casework.visits.models import Visit
from casework.visits.schemas import RosterPut, VisitCreate, VisitUpdate

log = logging.getLogger(__name__)


async def _flags(session: AsyncSession, ctx: ServiceContext, visit: Visit) -> list[str]:
    """Evidence checks: the date lies inside the semester; no photo was used for another student."""
    reused = await repo.photo_reused(session, visit.photo_hashes, visit.student_id, visit.id)
    return _flag_list(ctx, visit, reused)


def _not_in_future(visited_on: dt.date) -> None:
    """A visit is recorded once it happened: a date after today (China's calendar day, ``semesters.today``,
    as for attendance and reports) is a 422 ``visit_in_future``. The evidence checks only flag; this is a
    refusal, because a visit that has not happened is no evidence to correct later."""
    if visited_on > today():
        raise Problem(
            "A visit is recorded once it has happened: the visit date is after today.",
            status=422,
            code="visit_in_future",
            errors=[{"field": "visited_on", "code": "in_future"}],
        )


def _flag_list(ctx: ServiceContext, visit: Visit, photo_reused: bool) -> list[str]:
    flags = []
    start, end = bounds(visit.semester, settings_of(ctx))
    if not start <= visit.visited_on <= end:
        flags.append("date_outside_semester")
    if photo_reused:
        flags.append("photo_reused")
    return flags


async def record_visit(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    data: VisitCreate,
    key: KeyProbe | None = None,
) -> tuple[Visit, bool]:
    """Store a visit once per client id: the same id with the same content returns the stored visit
    (``created`` False); the same id with other content is a 409 ``visit_id_conflict``. Publishes
    VisitRecorded for a new visit. Flags failed evidence checks instead of refusing the visit; a visit
    dated after today is refused (422 ``visit_in_future``).

    A new visit costs three statements on PostgreSQL (four on SQLite): one look-up (roster entry and
    photo reuse together), the visit with its photos inserted ``ON CONFLICT (id) DO NOTHING`` (no
    savepoint; a visit stored before, or by a concurrent request, is then read and compared), and the
    outbox row. With ``key`` (the request's ``Idempotency-Key``), the key is locked first (one statement
    more: a concurrent retry with the same key waits for this request's commit), and its stored answer
    is looked up in the look-up statement, before anything is written: :class:`StoredAnswer` for an
    answered key, the 422 problem for a key used for another request."""
    if key is not None:
        await key.hold(session)
    school_code = data.school_code or principal.org
    ensure_writable(principal, principal.org, school_code)
    _not_in_future(data.visited_on)
    data = data.model_copy(update={"id": data.id.lower()})
    fingerprint = request_fingerprint(data.model_dump(mode="json"))
    semester = data.semester or semester_of(data.visited_on, settings_of(ctx))
    if semester is None:
        if key is not None:
            await key.lookup(session)
        existing = await repo.get_visit(session, data.id)
        if existing is not None:
            return _same_or_conflict(existing, fingerprint, principal), False
        raise Problem(
            "The visit date lies in no semester; name the semester.", code="bad_semester", status=422
        )
    photo_hashes = list(data.photo_hashes)
    roster, reused, key_found = await repo.roster_and_photo_reuse(
        session,
        school_code=school_code,
        semester=semester,
        student_id=data.student_id,
        photo_hashes=photo_hashes,
        visit_id=data.id,
        also=key.columns() if key is not None else (),
    )
    if key is not None:
        key.check(*key_found)
    now = utcnow()
    visit = Visit(
        id=data.id,
        school_code=school_code,
        class_code=data.class_code or roster.class_code,
        teacher=data.teacher or principal.subject,
        student_id=data.student_id,
        child_id=roster.child_id,
        case_id=data.case_id,
        semester=semester,
        visited_on=data.visited_on,
        form=data.form,
        participants=list(data.participants),
        notes=data.notes,
        latitude=data.latitude,
        longitude=data.longitude,
        photo_hashes=photo_hashes,
        special_group=roster.special_group,
        request_hash=fingerprint,
        created_by=principal.subject,
        created_at=now,
        updated_at=now,
    )
    visit.flags = _flag_list(ctx, visit, reused)
    visit.evidence_ok = not visit.flags
    if not await repo.insert_new_visit(session, visit):
        # The id is taken: an earlier sync of the same visit, or the same visit arriving twice at once.
        stored = await repo.get_visit(session, visit.id)
        if stored is None:
            raise Conflict("This visit id already holds a different visit.", code="visit_id_conflict")
        return _same_or_conflict(stored, fingerprint, principal), False
    await ctx.outbox.add(session, _event(visit), subject=visit.id, sequence=visit.version)
    return visit, True


def _same_or_conflict(stored: Visit, fingerprint: str, principal: Principal) -> Visit:
    if stored.request_hash != fingerprint or not principal.covers(stored.school_code):
        raise Conflict("This visit id already holds a different visit.", code="visit_id_conflict")
    return stored


def _event(visit: Visit) -> VisitRecorded:
    return VisitRecorded(
        visit_id=visit.id,
        child_id=visit.child_id,
        student_id=visit.student_id,
        school_code=visit.school_code,
        teacher=visit.teacher,
        semester=visit.semester,
        visited_on=visit.visited_on,
        special_group=visit.special_group,
    )


async def update_visit(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    visit_id: str,
    data: VisitUpdate,
    expected_version: int,
) -> Visit:
    """Correct a visit under ``If-Match``; a stale version is a 412 naming the fields changed since.
    Evidence checks run again when the date or the photos change; a date after today is a 422."""
    visit = await repo.get_visit(session, visit_id, principal, for_update=True)
    if visit is None:
        raise NotFound("No such visit.")
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    if changes.get("visited_on") is not None:
        _not_in_future(changes["visited_on"])
    changed = apply_changes(visit, changes, expected_version=expected_version)
    if not changed:
        return visit
    visit.updated_at = utcnow()
    if {"visited_on", "photo_hashes"} & set(changed):
        visit.flags = await _flags(session, ctx, visit)
        visit.evidence_ok = not visit.flags
        if "photo_hashes" in changed:
            await repo.replace_photos(session, visit)
    await session.flush()
    return visit


async def put_roster(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    school_code: str,
    semester: str,
    data: RosterPut,
) -> tuple[int, int]:
    """Replace a school's roster of a semester; each student owes 1 visit, or the largest quota of its
    special-group categories (a category with a quota in ``visit_quotas``) — the roster's categories and
    the same semester's census marks of the school together (``census.service``). Publishes RosterSet
    with the two counts (no student), its sequence the roster's version. Returns (students,
    special-group students)."""
    ensure_writable(principal, school_code, school_code)
    bounds(semester, settings_of(ctx))
    quotas = settings_of(ctx).visit_quotas
    await census_repo.lock_roster(session, school_code, semester)  # marks being applied wait, or see ours
    marks = await census_repo.categories_by_student(session, school_code, semester)
    rows, seen = [], set()
    for s in data.students:
        if s.student_id in seen:
            raise Problem("A student appears twice in the roster.", code="roster_duplicate", status=422)
        seen.add(s.student_id)
        special = [c for c in {*s.categories, *marks.get(s.student_id, [])} if c in quotas]
        rows.append(
            {
                "school_code": school_code,
                "semester": semester,
                "student_id": s.student_id,
                "child_id": s.child_id,
                "class_code": s.class_code,
                "teacher": s.teacher,
                "categories": sorted(set(s.categories)),
                "special_group": bool(special),
                "required_visits": max([1, *(quotas[c] for c in special)]),
            }
        )
    counts = {"students": len(rows), "special_group_students": sum(1 for r in rows if r["special_group"])}
    version = await repo.next_roster_version(session, school_code, semester, **counts)
    await repo.replace_roster(session, school_code, semester, rows)
    event = RosterSet(school_code=school_code, semester=semester, **counts)
    await ctx.outbox.add(session, event, subject=f"{school_code}:{semester}", sequence=version)
    return counts["students"], counts["special_group_students"]
