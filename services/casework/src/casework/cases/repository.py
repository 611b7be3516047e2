"""Every query of the case domain. Jurisdiction filters are applied here."""

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, String, bindparam, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement
from sqlmodel import col

from baoxue.audit import AuditLog
from baoxue.auth import Principal, within_jurisdiction
from baoxue.auth.jurisdiction import scope_pattern, within_jurisdiction_param
from baoxue.concurrency import bump_version
from baoxue.db import Database, utcnow
from casework.cases.models import (
    SCHOOL_REPORT,
    AttendanceConfirmation,
    CarePlan,
    Case,
    CaseReport,
    CaseSignal,
    CaseTransition,
    PersuasionAttempt,
)
from casework.cases.schemas import CasePublic
from casework.readmodels.models import ChildRegistryStatus, StudentRecord


def visible(principal: Principal) -> ColumnElement[bool]:
    """Cases the caller may see: its school's cases, or cases whose hukou town / school district it covers."""
    return within_jurisdiction(
        principal, col(Case.school_code), col(Case.hukou_town), col(Case.hukou_school_district)
    )


async def get_case(
    session: AsyncSession, case_id: str, principal: Principal | None = None, *, for_update: bool = False
) -> Case | None:
    """One case (None if absent or outside ``principal``'s jurisdiction); ``for_update`` locks its row."""
    query = select(Case).where(col(Case.id) == case_id)
    if principal is not None:
        query = query.where(visible(principal))
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


_PUBLIC_COLUMNS = tuple(
    Case.__table__.c[name]  # type: ignore[attr-defined]
    for name in (*CasePublic.model_fields, "id_number_enc")
    if name in Case.__table__.c  # type: ignore[attr-defined]
)


@functools.cache
def _read_case_statement(audit: AuditLog) -> Select[Any]:
    """Built once per service: the case by id inside the caller's jurisdiction, with its audit entry."""
    query = select(*_PUBLIC_COLUMNS).where(
        col(Case.id) == bindparam("case_id", type_=String()),
        within_jurisdiction_param(
            "scope", col(Case.school_code), col(Case.hukou_town), col(Case.hukou_school_district)
        ),
    )
    return audit.audited_select(query)


async def read_case_audited(
    db: Database, audit: AuditLog, case_id: str, principal: Principal
) -> dict[str, Any] | None:
    """One case's public columns (None if absent or outside ``principal``'s jurisdiction) and the audit
    entry of the read, in one PostgreSQL statement on an autocommit connection, run on the driver
    (one round trip; the entry is durable when this returns, and written only when the case is found)."""
    pattern = scope_pattern(principal)
    if pattern is None:
        return None
    params = {"case_id": case_id, "scope": pattern, **audit.entry_params(principal, "read", "case")}
    return await db.fetch_one(db.driver_query(_read_case_statement(audit)), params)


def _identifies(
    model: Any, child_id: str | None, student_id: str | None, blind_index: str | None
) -> list[ColumnElement[bool]]:
    """One condition per identifier given: the rows of ``model`` (a case, a student record) naming the
    child, the student record or the ID number's blind index; empty when none is given."""
    given = ((model.child_id, child_id), (model.student_id, student_id), (model.id_blind_index, blind_index))
    return [col(column) == value for column, value in given if value]


def _same_child(child_id: str | None, student_id: str | None, blind_index: str | None) -> ColumnElement[bool]:
    return or_(*_identifies(Case, child_id, student_id, blind_index))


async def find_open_case(
    session: AsyncSession, *, child_id: str | None, student_id: str | None, blind_index: str | None
) -> Case | None:
    """The child's open case, matched by any identifier we know it by; locked for the update."""
    query = (
        select(Case)
        .where(col(Case.open_key).is_not(None), _same_child(child_id, student_id, blind_index))
        .order_by(col(Case.opened_on))
        .limit(1)
        .with_for_update()
    )
    return (await session.execute(query)).scalar_one_or_none()


async def find_watched_case(
    session: AsyncSession,
    *,
    child_id: str | None,
    student_id: str | None,
    blind_index: str | None,
    on: dt.date,
) -> Case | None:
    """The child's most recently closed case whose relapse watch still runs on ``on``."""
    query = (
        select(Case)
        .where(
            col(Case.state) == "closed",
            col(Case.watch_until) >= on,
            _same_child(child_id, student_id, blind_index),
        )
        .order_by(col(Case.closed_on).desc())
        .limit(1)
        .with_for_update()
    )
    return (await session.execute(query)).scalar_one_or_none()


async def fill_child_id(session: AsyncSession, *, student_id: str, child_id: str) -> list[str]:
    """Cases opened from a record before it was linked to its child learn the child id (the open key
    stays), each with a new version (its ETag moves). Returns the ids of the cases changed."""
    query = (
        select(Case)
        .where(col(Case.student_id) == student_id, col(Case.child_id).is_(None))
        .order_by(col(Case.id))
        .with_for_update()
    )
    cases = list((await session.execute(query)).scalars())
    for case in cases:
        case.child_id = child_id
        bump_version(case, ["child_id"])
        case.updated_at = utcnow()
    await session.flush()
    return [case.id for case in cases]


async def last_transition_on(session: AsyncSession, case_id: str) -> dt.date | None:
    """The date of the case's latest transition (its opening or reopening included)."""
    query = select(func.max(col(CaseTransition.on))).where(col(CaseTransition.case_id) == case_id)
    found: dt.date | None = (await session.execute(query)).scalar_one()
    return found


async def attendance_since(session: AsyncSession, case: Case) -> dt.date | None:
    """The day from which confirmed attendance counts toward the case's closure: a returned case's
    return, a suspected case's (re)opening (an unfounded closure needs attendance too); None in the
    states whose closure needs none."""
    if case.state == "returned":
        return case.returned_on
    if case.state == "suspected":
        return await last_transition_on(session, case.id) or case.opened_on
    return None


async def case_of_signal(session: AsyncSession, signal_id: str) -> Case | None:
    """The case a signal was applied to (open or closed), locked."""
    query = (
        select(Case)
        .join(CaseSignal, col(CaseSignal.case_id) == col(Case.id))
        .where(col(CaseSignal.signal_id) == signal_id)
        .with_for_update(of=Case)  # type: ignore[arg-type]
    )
    return (await session.execute(query)).scalar_one_or_none()


async def signal_seen(session: AsyncSession, signal_id: str) -> bool:
    found = await session.execute(select(col(CaseSignal.id)).where(col(CaseSignal.signal_id) == signal_id))
    return found.first() is not None


async def list_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    states: Sequence[str] | None,
    confirmed_only: bool,
    school_code: str | None,
    after: tuple[dt.date, str] | None,
    limit: int,
) -> list[Case]:
    """A page of visible cases ordered by (opened_on, id), ``limit + 1`` rows."""
    query = select(Case).where(visible(principal))
    if states:
        query = query.where(col(Case.state).in_(states))
    if confirmed_only:
        query = query.where(col(Case.confirmed_on).is_not(None))
    if school_code:
        query = query.where(col(Case.school_code) == school_code)
    if after is not None:
        query = query.where(tuple_(col(Case.opened_on), col(Case.id)) > tuple_(*after))
    query = query.order_by(col(Case.opened_on), col(Case.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars())


async def list_overdue(
    session: AsyncSession,
    principal: Principal,
    *,
    today: dt.date,
    after: tuple[dt.date, str] | None,
    limit: int,
) -> list[Case]:
    """Visible confirmed cases whose report is not filed and whose due date has passed."""
    query = select(Case).where(
        visible(principal),
        col(Case.reported_on).is_(None),
        col(Case.report_due) < today,
    )
    if after is not None:
        query = query.where(tuple_(col(Case.report_due), col(Case.id)) > tuple_(*after))
    query = query.order_by(col(Case.report_due), col(Case.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars())


async def overdue_unpublished(session: AsyncSession, *, today: dt.date, batch: int) -> list[Case]:
    """Cases whose report became overdue and whose CaseReportOverdue was not published yet (locked)."""
    query = (
        select(Case)
        .where(
            col(Case.reported_on).is_(None),
            col(Case.report_due) < today,
            col(Case.overdue_published).is_(False),
        )
        .order_by(col(Case.report_due), col(Case.id))
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).scalars())


async def has_active_student_record(
    session: AsyncSession, *, child_id: str | None, student_id: str | None, blind_index: str | None
) -> bool:
    """Whether enrollment last reported an enrolled student record for the child."""
    clauses = _identifies(StudentRecord, child_id, student_id, blind_index)
    if not clauses:
        return False
    query = (
        select(col(StudentRecord.student_id))
        .where(or_(*clauses), col(StudentRecord.status) == "enrolled")
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


async def child_of_record(
    session: AsyncSession, *, student_id: str | None, blind_index: str | None
) -> tuple[str | None, str | None]:
    """What the student read model knows of a child named by a record or an ID blind index: the
    record's child and blind index, else the one child of the records with that blind index (None
    where it knows nothing, or more than one child)."""
    if student_id:
        query = select(col(StudentRecord.child_id), col(StudentRecord.id_blind_index)).where(
            col(StudentRecord.student_id) == student_id
        )
        row = (await session.execute(query)).first()
        if row is not None and (row[0] or row[1]):
            return row[0], row[1]
    if blind_index:
        children_query = (
            select(col(StudentRecord.child_id))
            .where(col(StudentRecord.id_blind_index) == blind_index, col(StudentRecord.child_id).is_not(None))
            .distinct()
            .limit(2)
        )
        children = list((await session.execute(children_query)).scalars())
        if len(children) == 1:
            return children[0], None
    return None, None


async def schools_of_child(
    session: AsyncSession, *, child_id: str | None, student_id: str | None, blind_index: str | None
) -> set[str]:
    """Where the student read model places a child known by any of these identifiers: the schools of
    its enrolled records, else of all its records (a dropout keeps its 学籍); empty when it knows none."""
    clauses = _identifies(StudentRecord, child_id, student_id, blind_index)
    if not clauses:
        return set()
    query = select(col(StudentRecord.school_code), col(StudentRecord.status)).where(or_(*clauses))
    rows = (await session.execute(query)).all()
    enrolled = {school for school, status in rows if status == "enrolled"}
    return enrolled or {school for school, _ in rows}


async def registry_status(session: AsyncSession, child_id: str | None) -> str | None:
    if not child_id:
        return None
    query = select(col(ChildRegistryStatus.status)).where(col(ChildRegistryStatus.child_id) == child_id)
    return (await session.execute(query)).scalar_one_or_none()


async def attendance_days(session: AsyncSession, case_id: str, since: dt.date | None) -> int:
    """School days of confirmed attendance on or after ``since`` (the return date)."""
    query = select(func.coalesce(func.sum(col(AttendanceConfirmation.days_attended)), 0)).where(
        col(AttendanceConfirmation.case_id) == case_id
    )
    if since is not None:
        query = query.where(col(AttendanceConfirmation.from_date) >= since)
    return int((await session.execute(query)).scalar_one())


async def overlapping_attendance(
    session: AsyncSession, case_id: str, *, since: dt.date, from_date: dt.date, to_date: dt.date
) -> AttendanceConfirmation | None:
    """A period confirmed on or after ``since`` (the return date) that shares a day with
    ``from_date``..``to_date`` (both inclusive), if any."""
    query = (
        select(AttendanceConfirmation)
        .where(
            col(AttendanceConfirmation.case_id) == case_id,
            col(AttendanceConfirmation.from_date) >= since,
            col(AttendanceConfirmation.from_date) <= to_date,
            col(AttendanceConfirmation.to_date) >= from_date,
        )
        .order_by(col(AttendanceConfirmation.from_date))
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def list_persuasions(
    session: AsyncSession, case_id: str, *, after: int | None, limit: int
) -> list[PersuasionAttempt]:
    query = select(PersuasionAttempt).where(col(PersuasionAttempt.case_id) == case_id)
    if after is not None:
        query = query.where(col(PersuasionAttempt.id) > after)
    query = query.order_by(col(PersuasionAttempt.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars())


async def get_report(session: AsyncSession, case_id: str, episode: int) -> CaseReport | None:
    """The report the case filed in ``episode`` (its ``reopen_count`` at the time), if any."""
    query = select(CaseReport).where(col(CaseReport.case_id) == case_id, col(CaseReport.episode) == episode)
    return (await session.execute(query)).scalar_one_or_none()


async def get_care_plan(session: AsyncSession, case_id: str) -> CarePlan | None:
    return (
        await session.execute(select(CarePlan).where(col(CarePlan.case_id) == case_id))
    ).scalar_one_or_none()


async def latest_enrollment_signal_day(session: AsyncSession, case_id: str) -> dt.date | None:
    """The latest ``detected_on`` of enrollment's signals recorded on the case (a school's own report,
    ``school_report``, is not one; None before the first)."""
    statement = select(func.max(col(CaseSignal.detected_on))).where(
        col(CaseSignal.case_id) == case_id, col(CaseSignal.signal) != SCHOOL_REPORT
    )
    return (await session.execute(statement)).scalar_one()


async def list_signals(session: AsyncSession, case_id: str) -> list[CaseSignal]:
    query = select(CaseSignal).where(col(CaseSignal.case_id) == case_id).order_by(col(CaseSignal.id))
    return list((await session.execute(query)).scalars())
