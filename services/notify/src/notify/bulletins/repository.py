"""Queries of the bulletins and scorecards domain (aggregations in SQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.db import conflict_insert
from notify.bulletins.models import Bulletin, CaseFact, CensusFact, RosterFact, VisitFact
from notify.deadlines.models import Deadline


async def insert_bulletin(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Store a campaign result once per (campaign, result version); True when new."""
    statement = conflict_insert(session, Bulletin.__table__).values(**row).on_conflict_do_nothing()  # type: ignore[attr-defined]
    return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]


async def latest_version(session: AsyncSession, campaign_id: str) -> int | None:
    """The highest result version held for a campaign, if any."""
    statement = select(func.max(col(Bulletin.result_version))).where(col(Bulletin.campaign_id) == campaign_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def get_bulletin(session: AsyncSession, bulletin_id: str) -> Bulletin | None:
    return await session.get(Bulletin, bulletin_id)


async def bulletins(
    session: AsyncSession, *, year: int | None, after: str | None, limit: int
) -> list[Bulletin]:
    statement = select(Bulletin)
    if year:
        statement = statement.where(col(Bulletin.year) == year)
    if after:
        statement = statement.where(col(Bulletin.id) > after)
    return list((await session.execute(statement.order_by(col(Bulletin.id)).limit(limit + 1))).scalars())


_DATES = ("opened_on", "confirmed_on", "escalated_on", "returned_on", "reopened_on")
EPISODE_DATES = {
    "returned_on": "returned_sequence",
    "reopened_on": "reopened_sequence",
    "relapsed_on": "relapsed_sequence",
}
"""The dates that keep their event's sequence: which episode a return belongs to is a matter of order."""


async def upsert_case(session: AsyncSession, row: dict[str, Any], sequence: int) -> None:
    """Insert or update a case fact, never applying an older event's state over a newer one's. Dates are
    facts of their own: an event that arrives late (CaseOpened after CaseConfirmed) still fills in the
    date it carries where the fact has none. A return or reopening date is replaced only by a later
    event's (by its own sequence, kept beside it), so a late return of an earlier episode does not
    overwrite the current episode's."""
    table = CaseFact.__table__  # type: ignore[attr-defined]
    own_sequences = {
        EPISODE_DATES[k]: sequence for k, v in row.items() if k in EPISODE_DATES and v is not None
    }
    statement = conflict_insert(session, table).values(**row, **own_sequences, sequence=sequence)
    new = statement.excluded
    newer = table.c.sequence <= new.sequence
    updates: dict[str, Any] = {"sequence": case((newer, new.sequence), else_=table.c.sequence)}
    for key, value in row.items():
        if key == "case_id" or value is None:
            continue
        if key in EPISODE_DATES:
            own = table.c[EPISODE_DATES[key]]
            # A fact from before the sequences were kept: the fact-level rule, as for the other dates.
            later = (own < new.sequence) | (own.is_(None) & (newer | table.c[key].is_(None)))
            updates[key] = case((later, new[key]), else_=table.c[key])
            updates[own.name] = case((later, new.sequence), else_=own)
            continue
        older = func.coalesce(table.c[key], new[key]) if key in _DATES else table.c[key]
        updates[key] = case((newer, new[key]), else_=older)
    await session.execute(statement.on_conflict_do_update(index_elements=["case_id"], set_=updates))


async def case_fact(session: AsyncSession, case_id: str) -> CaseFact | None:
    """The case as casework's events described it (its school and hukou town), or None if unknown."""
    return await session.get(CaseFact, case_id)


async def insert_visit(session: AsyncSession, row: dict[str, Any]) -> None:
    statement = conflict_insert(session, VisitFact.__table__).values(**row).on_conflict_do_nothing()  # type: ignore[attr-defined]
    await session.execute(statement)


async def upsert_census(session: AsyncSession, row: dict[str, Any]) -> None:
    """The latest census of a school and semester wins (a repeated census replaces the figures)."""
    table = CensusFact.__table__  # type: ignore[attr-defined]
    statement = conflict_insert(session, table).values(**row)
    statement = statement.on_conflict_do_update(
        index_elements=["school_code", "semester"],
        set_={k: statement.excluded[k] for k in row if k not in ("school_code", "semester")},
    )
    await session.execute(statement)


async def upsert_roster(session: AsyncSession, row: dict[str, Any], sequence: int) -> None:
    """The roster of a school and semester with the highest sequence wins: an older RosterSet arriving
    after a newer one changes nothing."""
    table = RosterFact.__table__  # type: ignore[attr-defined]
    statement = conflict_insert(session, table).values(**row, sequence=sequence)
    new = statement.excluded
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["school_code", "semester"],
            set_={k: new[k] for k in ("students", "special_group_students", "sequence")},
            where=table.c.sequence < new.sequence,
        )
    )


async def visit_coverage(
    session: AsyncSession, *, schools: set[str], semesters: set[str], special_quota: int
) -> dict[tuple[str, str], dict[str, int]]:
    """Per (school, semester), from the visits casework reported, its census and its roster: visits,
    students visited, special-group students visited, visits still owed by visited special-group
    students (``special_quota`` each), the census's lower bound of special-group students, and — only
    where casework published the roster — ``roster_students`` and ``roster_special``. One aggregate over
    a per-student subquery, plus one census and one roster look-up."""
    per_student = (
        select(
            col(VisitFact.school_code).label("school_code"),
            col(VisitFact.semester).label("semester"),
            col(VisitFact.student_key).label("student_key"),
            func.max(cast(col(VisitFact.special_group), Integer)).label("special"),
            func.count().label("n"),
        )
        .where(col(VisitFact.school_code).in_(schools), col(VisitFact.semester).in_(semesters))
        .group_by(col(VisitFact.school_code), col(VisitFact.semester), col(VisitFact.student_key))
        .subquery()
    )
    special_visited = (per_student.c.special == 1) & per_student.c.student_key.is_not(None)
    statement = select(
        per_student.c.school_code,
        per_student.c.semester,
        func.sum(per_student.c.n).label("visits"),
        func.count(per_student.c.student_key).label("students"),
        func.sum(case((special_visited, 1), else_=0)).label("special_students"),
        func.sum(
            case(
                (special_visited & (per_student.c.n < special_quota), special_quota - per_student.c.n),
                else_=0,
            )
        ).label("special_missing"),
    ).group_by(per_student.c.school_code, per_student.c.semester)
    out: dict[tuple[str, str], dict[str, int]] = {}
    for r in (await session.execute(statement)).all():
        out[(r.school_code, r.semester)] = {
            "visits": int(r.visits or 0),
            "students": int(r.students or 0),
            "special_students": int(r.special_students or 0),
            "special_missing": int(r.special_missing or 0),
            "special_at_least": 0,
        }
    census = select(
        col(CensusFact.school_code), col(CensusFact.semester), col(CensusFact.special_students_at_least)
    ).where(col(CensusFact.school_code).in_(schools), col(CensusFact.semester).in_(semesters))
    empty = {"visits": 0, "students": 0, "special_students": 0, "special_missing": 0, "special_at_least": 0}
    for school_code, semester, at_least in (await session.execute(census)).all():
        entry = out.setdefault((school_code, semester), dict(empty))
        entry["special_at_least"] = int(at_least)
    roster = select(
        col(RosterFact.school_code),
        col(RosterFact.semester),
        col(RosterFact.students),
        col(RosterFact.special_group_students),
    ).where(col(RosterFact.school_code).in_(schools), col(RosterFact.semester).in_(semesters))
    for school_code, semester, students, special in (await session.execute(roster)).all():
        entry = out.setdefault((school_code, semester), dict(empty))
        entry["roster_students"], entry["roster_special"] = int(students), int(special)
    return out


def _org_key(column: Any, level: str) -> Any:
    return func.substr(column, 1, 9) if level == "town" else column


async def deadline_stats(
    session: AsyncSession, *, kinds: tuple[str, ...], year: int, level: str, scope: str
) -> dict[str, dict[str, dict[str, int]]]:
    """Per organisation (school or town) and deadline kind: total, met, on time, lapsed, open. A cancelled
    deadline is owed by nobody (a verification task superseded, or moved to another school district): it
    is not counted."""
    org = _org_key(col(Deadline.org), level)
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    statement = (
        select(
            org.label("org"),
            col(Deadline.kind),
            func.count().label("total"),
            func.sum(cast(col(Deadline.status) == "met", Integer)).label("met"),
            func.sum(case((col(Deadline.on_time).is_(True), 1), else_=0)).label("on_time"),
            func.sum(cast(col(Deadline.status) == "lapsed", Integer)).label("lapsed"),
            func.sum(cast(col(Deadline.status) == "open", Integer)).label("open"),
        )
        .where(
            col(Deadline.kind).in_(kinds),
            col(Deadline.due_date).between(start, end),
            col(Deadline.org).startswith(scope, autoescape=True),
            ~col(Deadline.org).like("______D%"),
            col(Deadline.status) != "cancelled",
        )
        .group_by(org, col(Deadline.kind))
    )
    out: dict[str, dict[str, dict[str, int]]] = {}
    for r in (await session.execute(statement)).all():
        out.setdefault(r.org, {})[r.kind] = {
            "total": int(r.total),
            "met": int(r.met or 0),
            "on_time": int(r.on_time or 0),
            "lapsed": int(r.lapsed or 0),
            "open": int(r.open or 0),
        }
    return out


async def case_stats(
    session: AsyncSession, *, year: int, level: str, scope: str
) -> dict[str, dict[str, int]]:
    """Per school (or the school's town): confirmed dropouts in the year and how many returned. A return
    counts only for the episode it belongs to: one recorded after the case's latest reopening counts,
    even when it is dated before the reopening (the child came back before the reopening was recorded);
    one recorded before it does not (a child who returned, relapsed and is out of school again has not
    returned; the return date stays a fact of its own, for the dropout reports of its period). The same
    holds for a relapse of the open case (a returned child who stopped attending again before closure):
    only a return recorded after it counts. The order is the events' sequences; a fact from before they
    were kept is judged by the dates (a relapse always has its sequence: any return without one is
    older)."""
    org = _org_key(col(CaseFact.school_code), level)
    returned_on, reopened_on = col(CaseFact.returned_on), col(CaseFact.reopened_on)
    returned_seq, reopened_seq = col(CaseFact.returned_sequence), col(CaseFact.reopened_sequence)
    relapsed_seq = col(CaseFact.relapsed_sequence)
    returned = (
        returned_on.is_not(None)
        & (
            reopened_on.is_(None)
            | (returned_seq > reopened_seq)
            | ((returned_seq.is_(None) | reopened_seq.is_(None)) & (returned_on >= reopened_on))
        )
        & (relapsed_seq.is_(None) | (returned_seq.is_not(None) & (returned_seq > relapsed_seq)))
    )
    statement = (
        select(
            org.label("org"),
            func.count().label("dropouts"),
            func.sum(case((returned, 1), else_=0)).label("returned"),
        )
        .where(
            col(CaseFact.confirmed_on).between(dt.date(year, 1, 1), dt.date(year, 12, 31)),
            col(CaseFact.school_code).startswith(scope, autoescape=True),
        )
        .group_by(org)
    )
    return {
        r.org: {"dropouts": int(r.dropouts), "returned": int(r.returned or 0)}
        for r in (await session.execute(statement)).all()
    }


async def visit_stats(
    session: AsyncSession, *, year: int, level: str, scope: str
) -> dict[str, dict[str, int]]:
    org = _org_key(col(VisitFact.school_code), level)
    statement = (
        select(
            org.label("org"),
            func.count().label("visits"),
            func.count(func.distinct(col(VisitFact.student_key))).label("students"),
        )
        .where(
            col(VisitFact.semester).startswith(str(year)),
            col(VisitFact.school_code).startswith(scope, autoescape=True),
        )
        .group_by(org)
    )
    return {
        r.org: {"visits": int(r.visits), "students_visited": int(r.students)}
        for r in (await session.execute(statement)).all()
    }


async def roster_coverage(
    session: AsyncSession, *, year: int, level: str, scope: str, special_quota: int
) -> dict[str, dict[str, int]]:
    """Per school (or town) over the year's two semesters, from casework's rosters and visits: in the
    (school, semester) pairs with a roster, the students it lists (``roster_students``), how many of them
    were visited (the distinct students visited, at most the roster: notify does not know which students
    are listed), the visits the special-group students owe (``special_visits_due`` = listed special-group
    students × quota) and those made towards it (each special-group student's visits up to the quota); in
    the pairs without a roster, the students visited (``visited_without_roster``). ``rosters`` counts the
    pairs with a roster: 0 means coverage is unknown."""
    semesters = {f"{year}-spring", f"{year}-autumn"}
    schools: set[str] = set()
    for model in (RosterFact, VisitFact):
        statement = (
            select(col(model.school_code))
            .where(
                col(model.semester).in_(semesters), col(model.school_code).startswith(scope, autoescape=True)
            )
            .distinct()
        )
        schools |= set((await session.execute(statement)).scalars())
    if not schools:
        return {}
    pairs = await visit_coverage(session, schools=schools, semesters=semesters, special_quota=special_quota)
    out: dict[str, dict[str, int]] = {}
    for (school, _), figures in sorted(pairs.items()):
        org = school[:9] if level == "town" else school
        entry = out.setdefault(
            org,
            {
                "rosters": 0,
                "roster_students": 0,
                "roster_students_visited": 0,
                "special_visits_due": 0,
                "special_visits_made": 0,
                "visited_without_roster": 0,
            },
        )
        if "roster_students" not in figures:
            entry["visited_without_roster"] += figures["students"]
            continue
        due = figures["roster_special"] * special_quota
        made = figures["special_students"] * special_quota - figures["special_missing"]
        entry["rosters"] += 1
        entry["roster_students"] += figures["roster_students"]
        entry["roster_students_visited"] += min(figures["students"], figures["roster_students"])
        entry["special_visits_due"] += due
        entry["special_visits_made"] += min(made, due)
    return out
