"""The rules of the special-needs census (within two weeks of the semester start) and of support plans.

Completion time is the server's. A census is completed on the day the server receives the completion
(China's calendar day, ``semesters.today``), and ``on_time`` / ``late`` compare that day with the due
date (semester start + ``census_window_days``). A client cannot state another day: a ``completed_on``
other than today is refused (422 ``census_date_not_today``) — a school that did the work on paper files
it when it reaches the system, and the record shows when that was. A census cannot be completed before
its semester starts (409 ``census_not_open``): it would be "on time" by construction. The one exception
is a stack started with ``CASEWORK_SIMULATION=true`` (``make demo`` and the end-to-end tests set it, as
they set ``NOTIFY_SIMULATION``), where a past day of the semester is accepted so a whole statutory year
plays in minutes; every other stack, ``make run``'s included, refuses it.

Census marks feed the visit quotas. Each semester's roster (``PUT /rosters``, ``visits.service.put_roster``)
carries the categories the school listed; a student the same school marked in the same semester's census
owes visits for the union of both: ``special_group`` when either names a category with a quota in
``visit_quotas``, ``required_visits`` the largest quota of either (never fewer than 1). Neither source
overrides the other — a census mark adds categories and never removes one the roster gives, and a
roster replacement keeps the census marks of its semester (it reads them when it is put). The roster's
``categories`` stay as the school put them; the census's are on the census entries. Marks apply as they
are made (not only at completion); when they change how many students are in a special group, the
roster's version rises and a RosterSet with the new counts is published, so notify's visit-quota figures
follow.
"""

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.auth.jurisdiction import ensure_writable
from baoxue.concurrency import apply_changes
from baoxue.contracts.casework import CensusCompleted, RosterSet
from baoxue.db import utcnow
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.service import ServiceContext
from casework.cases.service import settings_of
from casework.census import repository as repo
from casework.census.models import Census, SupportPlan
from casework.census.schemas import CensusMark, CensusSchoolStatus, CensusSummary, PlanCreate, PlanUpdate
from casework.semesters import bounds, today
from casework.visits import repository as visits_repo


def census_due(ctx: ServiceContext, semester: str) -> dt.date:
    """The last day of a semester's census: the semester start plus the census window (two weeks)."""
    start, _end = bounds(semester, settings_of(ctx))
    return start + dt.timedelta(days=settings_of(ctx).census_window_days)


async def mark_students(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    school_code: str,
    semester: str,
    data: CensusMark,
) -> int:
    """Add or replace special-needs students of the school's census; 409 once the census is completed.
    Serialised with the census's completion (``repo.lock_census``): marks are either in the completed
    census's counts or refused, never stored after it."""
    ensure_writable(principal, school_code, school_code)
    census_due(ctx, semester)
    await repo.lock_census(session, school_code, semester)
    if await repo.get_census(session, school_code, semester) is not None:
        raise Conflict("The census of this semester was already completed.", code="census_already_completed")
    on = today()
    rows = {
        s.student_id: {
            "school_code": school_code,
            "semester": semester,
            "student_id": s.student_id,
            "child_id": s.child_id,
            "categories": sorted(set(s.categories)),
            "marked_on": on,
            "marked_by": principal.subject,
        }
        for s in data.students
    }
    await repo.replace_entries(session, school_code, semester, list(rows.values()))
    await apply_marks_to_roster(session=session, ctx=ctx, school_code=school_code, semester=semester)
    return len(rows)


def visits_owed(categories: Iterable[str], quotas: dict[str, int]) -> tuple[bool, int]:
    """(special group, visits owed) of a student in these categories: 1, or the largest quota among them."""
    special = [quotas[c] for c in set(categories) if c in quotas]
    return bool(special), max([1, *special])


async def apply_marks_to_roster(
    *, session: AsyncSession, ctx: ServiceContext, school_code: str, semester: str
) -> None:
    """Recompute the school's roster of the semester from its own categories ∪ the census marks (the
    precedence is in the module docstring); publish RosterSet when the special-group count changed.
    Nothing to do before the school has put a roster (``put_roster`` reads the marks then)."""
    roster = await repo.lock_roster(session, school_code, semester)
    if roster is None:
        return
    quotas = settings_of(ctx).visit_quotas
    marks = await repo.categories_by_student(session, school_code, semester)
    changes, special_students = [], 0
    for entry in await repo.roster_quotas(session, school_code, semester):
        special, required = visits_owed([*entry["categories"], *marks.get(entry["student_id"], [])], quotas)
        special_students += special
        if (special, required) != (bool(entry["special_group"]), entry["required_visits"]):
            changes.append({"student_id": entry["student_id"], "special": special, "required": required})
    if changes:
        await repo.set_roster_quotas(session, school_code, semester, changes)
    if special_students != roster["special_group_students"]:
        counts = {"students": roster["students"], "special_group_students": special_students}
        version = await visits_repo.next_roster_version(session, school_code, semester, **counts)
        event = RosterSet(school_code=school_code, semester=semester, **counts)
        await ctx.outbox.add(session, event, subject=f"{school_code}:{semester}", sequence=version)


def completion_day(ctx: ServiceContext, semester: str, stated: dt.date | None) -> dt.date:
    """The day a census is completed: the server's today (see the module docstring for why a stated day
    is refused, and the simulation-only exception)."""
    now = today()
    start, _end = bounds(semester, settings_of(ctx))
    on = now
    if stated is not None and stated != now:
        if not (settings_of(ctx).simulation and start <= stated < now):
            raise Problem(
                "A census is completed on the day the system receives it; completed_on, if given, must be today.",
                status=422,
                code="census_date_not_today",
                errors=[
                    {"field": "completed_on", "code": "not_today", "message": f"must be {now.isoformat()}"}
                ],
            )
        on = stated
    if on < start:
        raise Conflict(
            "The census of a semester can be completed once the semester has started.", code="census_not_open"
        )
    return on


async def complete_census(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    school_code: str,
    semester: str,
    completed_on: dt.date | None = None,
) -> Census:
    """Close the school's census on the server's today (``completion_day``): counts per category, on time
    when within the window; CensusCompleted. Once only: a census completed before, or by a concurrent
    request (a double tap, a retry racing the first), is a 409 ``census_already_completed``. Marking
    at the same moment is waited for (``repo.lock_census``), so the counts hold every mark stored."""
    ensure_writable(principal, school_code, school_code)
    due = census_due(ctx, semester)
    on = completion_day(ctx, semester, completed_on)
    await repo.lock_census(session, school_code, semester)
    categories = await repo.entry_categories(session, school_code, semester)
    counts = Counter(c for cats in categories for c in cats)
    census = Census(
        school_code=school_code,
        semester=semester,
        id=str(uuid.uuid4()),
        due_on=due,
        completed_on=on,
        on_time=on <= due,
        students=len(categories),
        counts_by_category=dict(sorted(counts.items())),
        completed_by=principal.subject,
    )
    if not await repo.insert_census(session, census):  # completed before, or by a request at the same moment
        raise Conflict("The census of this semester was already completed.", code="census_already_completed")
    event = CensusCompleted(
        census_id=census.id,
        school_code=school_code,
        semester=semester,
        completed_on=on,
        on_time=census.on_time,
        counts_by_category=census.counts_by_category,
    )
    await ctx.outbox.add(session, event, subject=census.id, sequence=1)
    return census


async def census_summary(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, semester: str
) -> CensusSummary:
    """Completeness and lateness of a semester's census for every school in the caller's jurisdiction."""
    due = census_due(ctx, semester)
    schools = [s.code for s in ctx.directory.schools() if principal.covers(s.code)]
    marked = await repo.marked_counts(session, principal, semester)
    done = await repo.completed(session, principal, semester)
    now = today()
    rows = []
    for code in schools:
        c = done.get(code)
        rows.append(
            CensusSchoolStatus(
                school_code=code,
                due_on=due,
                students_marked=marked.get(code, 0),
                completed=c is not None,
                completed_on=c.completed_on if c else None,
                on_time=c.on_time if c else None,
                late=(not c.on_time) if c else now > due,
            )
        )
    return CensusSummary(
        semester=semester,
        due_on=due,
        schools=len(rows),
        completed=sum(r.completed for r in rows),
        on_time=sum(bool(r.on_time) for r in rows),
        late=sum(r.late for r in rows),
        missing=sum(not r.completed for r in rows),
        by_school=rows,
    )


async def create_plan(*, session: AsyncSession, principal: Principal, data: PlanCreate) -> SupportPlan:
    """One plan per student (一生一案) or per registered-poor family (一家一案) and school; a family plan
    needs one of its students marked ``registered_poor`` in a census of the school."""
    school_code = data.school_code or principal.org
    ensure_writable(principal, principal.org, school_code)
    if data.kind == "family":
        assert data.family_ref is not None
        poor = await repo.students_with_category(session, school_code, data.student_ids, "registered_poor")
        if not poor:
            raise Conflict(
                "No student of this family is marked registered-poor in the census.",
                code="family_not_registered_poor",
            )
        subject, students = data.family_ref, sorted(set(data.student_ids))
    else:
        assert data.student_id is not None
        subject, students = data.student_id, [data.student_id]
    plan = SupportPlan(
        id=str(uuid.uuid4()),
        kind=data.kind,
        school_code=school_code,
        subject=subject,
        student_ids=students,
        measures=list(data.measures),
        mentor=data.mentor,
        aid=data.aid,
        review_on=data.review_on,
        created_by=principal.subject,
    )
    try:
        async with session.begin_nested():
            session.add(plan)
            await session.flush()
    except IntegrityError:
        raise Conflict(
            "This student or family already has a plan at the school.", code="plan_exists"
        ) from None
    return plan


async def update_plan(
    *, session: AsyncSession, principal: Principal, plan_id: str, data: PlanUpdate, expected_version: int
) -> SupportPlan:
    """Edit a plan under ``If-Match`` (412 naming the fields changed since)."""
    plan = await repo.get_plan(session, plan_id, principal, for_update=True)
    if plan is None:
        raise NotFound("No such plan.")
    if apply_changes(plan, data.model_dump(exclude_unset=True), expected_version=expected_version):
        plan.updated_at = utcnow()
        await session.flush()
    return plan
