"""Every query of home visits, rosters and coverage (set-based; jurisdiction filters here)."""

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth import Principal, within_jurisdiction
from baoxue.db import conflict_insert, utcnow
from casework.visits.models import Roster, RosterEntry, Visit, VisitPhoto


async def get_visit(
    session: AsyncSession, visit_id: str, principal: Principal | None = None, *, for_update: bool = False
) -> Visit | None:
    query = select(Visit).where(col(Visit.id) == visit_id)
    if principal is not None:
        query = query.where(within_jurisdiction(principal, col(Visit.school_code)))
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def photo_reused(session: AsyncSession, hashes: Sequence[str], student_id: str, visit_id: str) -> bool:
    """Whether any of ``hashes`` was already submitted for a visit of a different student."""
    if not hashes:
        return False
    query = (
        select(col(VisitPhoto.visit_id))
        .where(
            col(VisitPhoto.photo_hash).in_(hashes),
            col(VisitPhoto.student_id) != student_id,
            col(VisitPhoto.visit_id) != visit_id,
        )
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


async def replace_photos(session: AsyncSession, visit: Visit) -> None:
    await session.execute(delete(VisitPhoto).where(col(VisitPhoto.visit_id) == visit.id))
    await insert_photos(session, visit)


async def insert_photos(session: AsyncSession, visit: Visit) -> None:
    """The photo hashes of a visit that has none stored yet (one multi-row insert)."""
    if visit.photo_hashes:
        rows = [
            {"visit_id": visit.id, "photo_hash": h, "student_id": visit.student_id}
            for h in sorted(set(visit.photo_hashes))
        ]
        await session.execute(insert(VisitPhoto), rows)


@dataclass(frozen=True)
class RosterFacts:
    """What the roster says about a visited student (all None/False when the student is not on it)."""

    class_code: str | None = None
    child_id: str | None = None
    special_group: bool = False


async def roster_and_photo_reuse(
    session: AsyncSession,
    *,
    school_code: str,
    semester: str,
    student_id: str,
    photo_hashes: Sequence[str],
    visit_id: str,
    also: Sequence[Any] = (),
) -> tuple[RosterFacts, bool, tuple[Any, ...]]:
    """The student's roster entry and whether a photo was already used for another student, in one
    round trip (primary-key look-ups and an index probe as scalar subqueries), and the values of the
    scalar subqueries ``also`` (e.g. an idempotency key's look-up) from the same statement."""
    entry = (
        col(RosterEntry.school_code) == school_code,
        col(RosterEntry.semester) == semester,
        col(RosterEntry.student_id) == student_id,
    )
    columns: list[Any] = [
        select(col(RosterEntry.class_code)).where(*entry).scalar_subquery(),
        select(col(RosterEntry.child_id)).where(*entry).scalar_subquery(),
        select(col(RosterEntry.special_group)).where(*entry).scalar_subquery(),
    ]
    if photo_hashes:
        columns.append(
            exists().where(
                col(VisitPhoto.photo_hash).in_(photo_hashes),
                col(VisitPhoto.student_id) != student_id,
                col(VisitPhoto.visit_id) != visit_id,
            )
        )
    extra = len(columns)
    row = (await session.execute(select(*columns, *also))).one()
    facts = RosterFacts(class_code=row[0], child_id=row[1], special_group=bool(row[2]))
    return facts, bool(photo_hashes) and bool(row[3]), tuple(row[extra:])


@functools.cache
def _insert_visit_statement(dialect: str) -> Any:
    """Built once per dialect: the visit unless its id is taken; on PostgreSQL its photos in the same
    statement (a data-modifying CTE over the inserted row, so no photo is written for a visit that was
    not). Answers the inserted id, or no row."""
    table = Visit.__table__  # type: ignore[attr-defined]
    insert_visit = (
        conflict_insert(dialect, table)
        .values({c.name: bindparam(c.name, type_=c.type) for c in table.columns})
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(table.c.id, table.c.student_id)
    )
    if dialect != "postgresql":
        return insert_visit
    inserted = insert_visit.cte("inserted_visit")
    hashes = (
        func.unnest(bindparam("photo_hash_list", type_=ARRAY(String())))
        .table_valued("photo_hash")
        .render_derived()
    )
    photos = (
        insert(VisitPhoto)
        .from_select(
            ["visit_id", "photo_hash", "student_id"],
            select(inserted.c.id, hashes.c.photo_hash, inserted.c.student_id).select_from(
                inserted.join(hashes, true())
            ),
        )
        .cte("inserted_photos")
    )
    return select(inserted.c.id).add_cte(photos)


async def insert_new_visit(session: AsyncSession, visit: Visit) -> bool:
    """Insert ``visit`` and its photo hashes unless its id is taken (``ON CONFLICT (id) DO NOTHING``, no
    savepoint); True when it was inserted. PostgreSQL: one statement; SQLite: the visit, then the photos."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    values: dict[str, Any] = {c.name: getattr(visit, c.name) for c in Visit.__table__.columns}  # type: ignore[attr-defined]
    if dialect == "postgresql":
        values["photo_hash_list"] = sorted(set(visit.photo_hashes))
    inserted = (await session.execute(_insert_visit_statement(dialect), values)).first() is not None
    if inserted and dialect != "postgresql":
        await insert_photos(session, visit)
    return inserted


async def next_roster_version(
    session: AsyncSession, school_code: str, semester: str, *, students: int, special_group_students: int
) -> int:
    """Record a replacement of the school's roster of the semester with its counts and return the roster's
    new version (1 the first time). One upsert, run before the entries are replaced: its row lock makes
    a concurrent replacement of the same roster wait for this transaction, so versions follow commits."""
    table = Roster.__table__  # type: ignore[attr-defined]
    counts = {"students": students, "special_group_students": special_group_students, "updated_at": utcnow()}
    stmt = conflict_insert(session, table).values(
        school_code=school_code, semester=semester, version=1, **counts
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=["school_code", "semester"], set_={"version": table.c.version + 1, **counts}
    ).returning(table.c.version)
    return int((await session.execute(upsert)).scalar_one())


async def replace_roster(
    session: AsyncSession, school_code: str, semester: str, rows: list[dict[str, Any]]
) -> None:
    """Replace a school's roster of a semester: one delete, one multi-row insert."""
    await session.execute(
        delete(RosterEntry).where(
            col(RosterEntry.school_code) == school_code, col(RosterEntry.semester) == semester
        )
    )
    if rows:
        await session.execute(insert(RosterEntry), rows)


async def list_visits(
    session: AsyncSession,
    principal: Principal,
    *,
    semester: str | None,
    school_code: str | None,
    student_id: str | None,
    flagged: bool | None,
    after: tuple[dt.date, str] | None,
    limit: int,
) -> list[Visit]:
    query = select(Visit).where(within_jurisdiction(principal, col(Visit.school_code)))
    if semester:
        query = query.where(col(Visit.semester) == semester)
    if school_code:
        query = query.where(col(Visit.school_code) == school_code)
    if student_id:
        query = query.where(col(Visit.student_id) == student_id)
    if flagged is not None:
        query = query.where(col(Visit.evidence_ok).is_(not flagged))
    if after is not None:
        query = query.where(tuple_(col(Visit.visited_on), col(Visit.id)) > tuple_(*after))
    query = query.order_by(col(Visit.visited_on), col(Visit.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars())


def _visit_counts(semester: str) -> Any:
    """Per student and school: accepted visits (evidence ok) and flagged visits in the semester."""
    return (
        select(
            col(Visit.school_code),
            col(Visit.student_id),
            func.sum(case((col(Visit.evidence_ok).is_(True), 1), else_=0)).label("done"),
            func.sum(case((col(Visit.evidence_ok).is_(False), 1), else_=0)).label("flagged"),
        )
        .where(col(Visit.semester) == semester)
        .group_by(col(Visit.school_code), col(Visit.student_id))
        .subquery()
    )


def _roster_with_counts(principal: Principal, semester: str, school_code: str | None) -> tuple[Any, Any, Any]:
    counts = _visit_counts(semester)
    done = func.coalesce(counts.c.done, 0)
    join = and_(
        counts.c.school_code == col(RosterEntry.school_code),
        counts.c.student_id == col(RosterEntry.student_id),
    )
    where = [
        col(RosterEntry.semester) == semester,
        within_jurisdiction(principal, col(RosterEntry.school_code)),
    ]
    if school_code:
        where.append(col(RosterEntry.school_code) == school_code)
    return counts, done, (join, where)


async def coverage(
    session: AsyncSession, principal: Principal, *, semester: str, school_code: str | None, by: str
) -> list[dict[str, Any]]:
    """Coverage counts grouped by school, class or teacher (one aggregate query)."""
    counts, done, (join, where) = _roster_with_counts(principal, semester, school_code)
    key = {
        "school": col(RosterEntry.school_code),
        "class": col(RosterEntry.class_code),
        "teacher": col(RosterEntry.teacher),
    }[by]
    special = col(RosterEntry.special_group).is_(True)
    query: Any = (
        select(
            key.label("key"),
            col(RosterEntry.school_code),
            func.count().label("students"),
            func.sum(case((done >= 1, 1), else_=0)).label("visited_at_least_once"),
            func.sum(case((special, 1), else_=0)).label("special_students"),
            func.sum(case((and_(special, done >= col(RosterEntry.required_visits)), 1), else_=0)).label(
                "special_quota_met"
            ),
            func.sum(case((done < col(RosterEntry.required_visits), 1), else_=0)).label("owed"),
            func.coalesce(func.sum(counts.c.flagged), 0).label("flagged_visits"),
        )
        .select_from(RosterEntry)
        .outerjoin(counts, join)
        .where(*where)
        .group_by(key, col(RosterEntry.school_code))
        .order_by(col(RosterEntry.school_code), key)
    )
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def owed(
    session: AsyncSession,
    principal: Principal,
    *,
    semester: str,
    school_code: str | None,
    class_code: str | None,
    teacher: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Students who have had fewer visits than they are owed, ordered by (school, student)."""
    counts, done, (join, where) = _roster_with_counts(principal, semester, school_code)
    query = (
        select(
            col(RosterEntry.student_id),
            col(RosterEntry.school_code),
            col(RosterEntry.class_code),
            col(RosterEntry.teacher),
            col(RosterEntry.categories),
            col(RosterEntry.required_visits),
            done.label("visits_done"),
        )
        .select_from(RosterEntry)
        .outerjoin(counts, join)
        .where(*where, done < col(RosterEntry.required_visits))
    )
    if class_code:
        query = query.where(col(RosterEntry.class_code) == class_code)
    if teacher:
        query = query.where(col(RosterEntry.teacher) == teacher)
    if after is not None:
        query = query.where(
            tuple_(col(RosterEntry.school_code), col(RosterEntry.student_id)) > tuple_(*after)
        )
    query = query.order_by(col(RosterEntry.school_code), col(RosterEntry.student_id)).limit(limit + 1)
    return [dict(r) for r in (await session.execute(query)).mappings()]
