"""The rules of the special-needs census (within two weeks of the semester start) and of support plans."""

import datetime as dt
import uuid
from collections import Counter

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.auth.jurisdiction import ensure_writable
from baoxue.contracts.casework import CensusCompleted
from baoxue.db import utcnow
from baoxue.errors import Conflict, NotFound
from baoxue.service import ServiceContext
from casework.cases.service import settings_of
from casework.census import repository as repo
from casework.census.models import Census, SupportPlan
from casework.census.schemas import CensusMark, CensusSchoolStatus, CensusSummary, PlanCreate, PlanUpdate
from casework.semesters import bounds, today
from casework.versioning import apply_changes


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
    """Add or replace special-needs students of the school's census; 409 once the census is completed."""
    ensure_writable(principal, school_code, school_code)
    census_due(ctx, semester)
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
    return len(rows)


async def complete_census(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    school_code: str,
    semester: str,
    completed_on: dt.date | None = None,
) -> Census:
    """Close the school's census: counts per category, on time when within the window; CensusCompleted."""
    ensure_writable(principal, school_code, school_code)
    due = census_due(ctx, semester)
    if await repo.get_census(session, school_code, semester) is not None:
        raise Conflict("The census of this semester was already completed.", code="census_already_completed")
    categories = await repo.entry_categories(session, school_code, semester)
    counts = Counter(c for cats in categories for c in cats)
    on = completed_on or today()
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
    session.add(census)
    await session.flush()
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
