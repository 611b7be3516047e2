"""The set-based classification of a verification run: one INSERT … SELECT over the whole scope.

Rule set ``2026.1`` (in priority order; the first that applies decides, and names its evidence):
1. ``registry_status``: deceased / moved_out / duplicate in the registry → excluded with that outcome.
2. ``active_student_record``: a 学籍 with the child's ID blind index that counts on the as-of date →
   enrolled_local. A record counts when it is enrolled, or suspended (休学) with the suspension running on
   the as-of date (``suspended_until`` on or after it, or not set).
3. ``placement``: a placement in force on the as-of date whose student record counts (as in 2) → placed.
4. ``approved_exemption`` / ``approved_deferral``: an approved application valid on the as-of date.
5. ``suspension_expired``: none of the above, and the child's 学籍 is a suspension that ended before the
   as-of date without 复学 (a suspected dropout, domain rules) → ``unaccounted``, the record as evidence.
6. ``no_explanation``: everything else is ``unaccounted``.
Every ``unaccounted`` child becomes a verification task.
Scope: children aged 6–14 full years on the cut-off date (birth date known).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    Date,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    table,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from baoxue.pii.citizen_id import age_on
from enrollment.children.models import ChildView
from enrollment.deferrals.models import DeferralApplication
from enrollment.placements.models import Placement
from enrollment.students.models import ACTIVE_STATUSES, StudentRecord
from enrollment.verification.models import VerificationResult, VerificationTask

RULE_SET_VERSION = "2026.1"
EXCLUDED_BY_STATUS = {"deceased": "deceased", "moved_out": "moved_out", "duplicate": "duplicate_hukou"}

C = ChildView.__table__  # type: ignore[attr-defined]
S = StudentRecord.__table__  # type: ignore[attr-defined]
P = Placement.__table__  # type: ignore[attr-defined]
D = DeferralApplication.__table__  # type: ignore[attr-defined]
R = VerificationResult.__table__  # type: ignore[attr-defined]
T = VerificationTask.__table__  # type: ignore[attr-defined]


def birth_bounds(cutoff: dt.date) -> tuple[dt.date, dt.date]:
    """(earliest, latest) birth dates of a child aged 6–14 full years on ``cutoff`` (周岁, inclusive)."""

    def years_before(years: int) -> dt.date:
        try:
            return cutoff.replace(year=cutoff.year - years)
        except ValueError:  # 29 February → 28 February (民法典 第二百零二条)
            return cutoff.replace(year=cutoff.year - years, day=28)

    earliest = years_before(15) + dt.timedelta(days=1)
    latest = years_before(6)
    assert age_on(earliest, cutoff) == 14 and age_on(latest, cutoff) == 6
    return earliest, latest


def record_counts(record, as_of):  # type: ignore[no-untyped-def]
    """A student record that explains a child on ``as_of``: active (enrolled or suspended), and a
    suspension not ended before ``as_of`` (a 休学 that ended without 复学 is a suspected dropout)."""
    return and_(
        record.c.status.in_(ACTIVE_STATUSES),
        or_(
            record.c.status != "suspended",
            record.c.suspended_until.is_(None),
            record.c.suspended_until >= as_of,
        ),
    )


def classification_select(  # type: ignore[no-untyped-def]
    campaign_id: str, run: int, as_of: dt.date, cutoff: dt.date, *, ordered: bool = True, typed: bool = False
):
    """The SELECT that classifies every child in scope (see :func:`_classification`)."""
    earliest, latest = birth_bounds(cutoff)
    return _classification(
        literal(campaign_id), literal(run), as_of, earliest, latest, ordered=ordered, typed=typed
    )


def _classification(  # type: ignore[no-untyped-def]
    campaign_id, run, as_of, earliest, latest, *, ordered: bool, typed: bool
):
    """The SELECT that classifies every child in scope (no Python per child); the values are literals or
    bound parameters.

    ``ordered``: in primary-key order (an ``INSERT`` then fills the index sequentially). ``typed``: every
    column cast to its exact type in ``verification_results`` and named like it (a ``CREATE TABLE … AS``
    of this select can be attached as a partition).

    Applications and placements in force are aggregated per child first and joined by hash, so the
    statement stays one pass over each table (no correlated sub-query per child).
    """
    # A placement counts only while its 学籍 counts: a record that dropped out, transferred out or
    # graduated (or a suspension ended without 复学) under a placement never ended places nobody.
    placed_record = S.alias("placed_record")
    placements = (
        select(P.c.child_id, func.min(P.c.id).label("placement_id"))
        .select_from(
            P.join(
                placed_record, and_(placed_record.c.id == P.c.student_id, record_counts(placed_record, as_of))
            )
        )
        .where(P.c.starts_on <= as_of, or_(P.c.ends_on.is_(None), P.c.ends_on >= as_of))
        .group_by(P.c.child_id)
        .subquery("placements_in_force")
    )
    applications = (
        select(
            D.c.child_id,
            func.min(case((D.c.kind == "exemption", D.c.id))).label("exemption_id"),
            func.min(case((D.c.kind == "deferral", D.c.id))).label("deferral_id"),
        )
        .where(D.c.state == "approved", D.c.valid_from <= as_of, D.c.valid_until >= as_of)
        .group_by(D.c.child_id)
        .subquery("applications_in_force")
    )
    inner = (
        select(
            C.c.child_id,
            C.c.status,
            C.c.hukou_town,
            C.c.hukou_school_district,
            # the child's active record (at most one): it explains the child only when it counts
            case((record_counts(S, as_of), S.c.id)).label("student_id"),
            case((S.c.status == "suspended", S.c.id)).label("suspended_id"),
            placements.c.placement_id,
            applications.c.exemption_id,
            applications.c.deferral_id,
        )
        .select_from(
            C.outerjoin(S, and_(S.c.id_blind_index == C.c.id_blind_index, S.c.status.in_(ACTIVE_STATUSES)))
            .outerjoin(placements, placements.c.child_id == C.c.child_id)
            .outerjoin(applications, applications.c.child_id == C.c.child_id)
        )
        .where(C.c.birth_date.between(earliest, latest))
        .subquery("scope")
    )
    q = inner.c
    excluded = q.status.in_(tuple(EXCLUDED_BY_STATUS))
    outcome = case(
        (excluded, case(*((q.status == k, literal(v)) for k, v in EXCLUDED_BY_STATUS.items()))),
        (q.student_id.is_not(None), literal("enrolled_local")),
        (q.placement_id.is_not(None), literal("placed")),
        (q.exemption_id.is_not(None), literal("exempted")),
        (q.deferral_id.is_not(None), literal("deferred")),
        else_=literal("unaccounted"),
    )
    rule = case(
        (excluded, literal("registry_status")),
        (q.student_id.is_not(None), literal("active_student_record")),
        (q.placement_id.is_not(None), literal("placement")),
        (q.exemption_id.is_not(None), literal("approved_exemption")),
        (q.deferral_id.is_not(None), literal("approved_deferral")),
        (q.suspended_id.is_not(None), literal("suspension_expired")),
        else_=literal("no_explanation"),
    )
    evidence = case(
        (excluded, literal("registry:") + q.status),
        (q.student_id.is_not(None), literal("student:") + q.student_id),
        (q.placement_id.is_not(None), literal("placement:") + q.placement_id),
        (q.exemption_id.is_not(None), literal("application:") + q.exemption_id),
        (q.deferral_id.is_not(None), literal("application:") + q.deferral_id),
        (q.suspended_id.is_not(None), literal("student:") + q.suspended_id),
        else_=None,
    )
    columns = [campaign_id, q.child_id, outcome, rule, evidence, q.hukou_town, q.hukou_school_district, run]
    if typed:
        columns = [
            cast(c, R.c[name].type).label(name) for c, name in zip(columns, RESULT_COLUMNS, strict=True)
        ]
    stmt = select(*columns)
    # primary-key order: the index is filled sequentially, not at random
    return stmt.order_by(q.child_id) if ordered else stmt


class AnnouncedTask(NamedTuple):
    """A task a run opened (``sequence`` 1), reopened after it was superseded, or moved to the child's new
    hukou area (``sequence``: the task's version after the run): its ChildUnaccounted, naming the school
    district that now owns the task, is published in the run's transaction."""

    id: str
    child_id: str
    hukou_town: str | None
    hukou_school_district: str
    sequence: int = 1


class SupersededTask(NamedTuple):
    """An unresolved task a run superseded (its child is explained now): its VerificationTaskSuperseded,
    at the task's version after the run (``sequence``), is published in the run's transaction."""

    id: str
    hukou_school_district: str
    sequence: int


UNRESOLVED = ("open", "awaiting_confirmation")


RESULT_COLUMNS = [
    "campaign_id",
    "child_id",
    "outcome",
    "rule",
    "evidence",
    "hukou_town",
    "hukou_school_district",
    "run",
]


async def classify(
    session: AsyncSession, *, campaign_id: str, run: int, as_of: dt.date, cutoff: dt.date, dialect: str
) -> dict[str, int]:
    """Replace the campaign's results with a fresh classification; returns the children in scope per outcome.

    On PostgreSQL the counts come from the INSERT itself (``WITH ins AS (INSERT … RETURNING outcome)
    SELECT outcome, count(*) …``): the rows just written are not read back. SQLite cannot put DML in a
    CTE, so it counts afterwards.
    """
    await session.execute(delete(R).where(R.c.campaign_id == campaign_id))
    fill = insert(R).from_select(RESULT_COLUMNS, classification_select(campaign_id, run, as_of, cutoff))
    if dialect == "postgresql":
        ins = fill.returning(R.c.outcome).cte("ins")
        rows = await session.execute(select(ins.c.outcome, func.count()).group_by(ins.c.outcome))
    else:
        await session.execute(fill)
        rows = await session.execute(
            select(R.c.outcome, func.count()).where(R.c.campaign_id == campaign_id).group_by(R.c.outcome)
        )
    return {str(o): int(n) for o, n in rows.all()}


def _new_id(dialect: str) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.cast(func.gen_random_uuid(), R.c.child_id.type)
    return func.lower(func.hex(func.randomblob(16)))


async def sync_tasks(
    session: AsyncSession, *, campaign_id: str, run: int, due_on: dt.date, district_code: str, dialect: str
) -> tuple[dict[str, int], list[AnnouncedTask], list[SupersededTask]]:
    """Tasks follow the results: open a task for each newly unaccounted child, supersede unresolved tasks
    of children now explained (a new feed, a new record), reopen superseded ones that are unaccounted
    again, and move the unresolved (and reopened) tasks of children whose hukou moved to their new school
    district and town.

    A task is the child's verification in the campaign (one per child and campaign), so a hukou move
    moves the task rather than superseding it for a second one: the district that owns an unresolved task
    is always the child's current hukou school district (which lists it, sees it in its progress and
    resolves it), and the old district no longer sees it. The new district is told as a new task's
    district is: a ChildUnaccounted naming it (the task's next version), so the events tell in order which
    district owned the task from when. A state reached by a resolution is kept: an awaiting confirmation
    moves with its claim; a resolved task stays as it was resolved.

    Returns the counts, the tasks to announce (opened, reopened or moved: id, child_id, hukou_town,
    hukou_school_district, sequence) and the tasks superseded (id, hukou_school_district, sequence), which
    the caller publishes in the same transaction: they are written as published, so nothing is read back
    or updated afterwards. Every statement is one set-based pass
    (the unaccounted few are found through the partial index ``ix_verification_results_unaccounted``).
    """
    unaccounted = select(R.c.child_id).where(R.c.campaign_id == campaign_id, R.c.outcome == "unaccounted")
    superseded = await session.execute(
        update(T)
        .where(
            T.c.campaign_id == campaign_id,
            T.c.state.in_(UNRESOLVED),
            T.c.child_id.not_in(unaccounted),
        )
        .values(state="superseded", version=T.c.version + 1)
        .returning(T.c.id, T.c.hukou_school_district, T.c.version)
    )
    superseded_tasks = [SupersededTask(*r) for r in superseded.all()]
    # The child's hukou area now (its result in this run), beside the task's.
    now = select(R.c.hukou_school_district, R.c.hukou_town).where(
        R.c.campaign_id == campaign_id, R.c.child_id == T.c.child_id
    )
    district_now = func.coalesce(
        now.with_only_columns(R.c.hukou_school_district).scalar_subquery(), district_code
    )
    town_now = now.with_only_columns(R.c.hukou_town).scalar_subquery()
    moved = or_(T.c.hukou_school_district != district_now, T.c.hukou_town.is_distinct_from(town_now))
    changing = and_(
        T.c.campaign_id == campaign_id,
        T.c.child_id.in_(unaccounted),
        or_(T.c.state == "superseded", and_(T.c.state.in_(UNRESOLVED), moved)),
    )
    # SQLite's RETURNING sees only the new values: which tasks reopen and which move is read first (the
    # same rows: this transaction holds the write lock since the supersession).
    before = {
        str(i): (bool(r), bool(m))
        for i, r, m in (
            await session.execute(select(T.c.id, T.c.state == "superseded", moved).where(changing))
        ).all()
    }
    changed: Sequence[Any] = ()
    if before:
        changed = (
            await session.execute(
                update(T)
                .where(changing)
                .values(
                    state=case((T.c.state == "superseded", literal("open")), else_=T.c.state),
                    hukou_school_district=district_now,
                    hukou_town=town_now,
                    version=T.c.version + 1,
                )
                .returning(T.c.id, T.c.child_id, T.c.hukou_town, T.c.hukou_school_district, T.c.version)
            )
        ).all()
    # reopened (whether or not it moved) or moved: announced again, naming the district that owns it now
    again = [AnnouncedTask(*r) for r in changed]
    moved_count = sum(moved_ for _reopened, moved_ in before.values())
    fresh = (
        select(
            _new_id(dialect),
            R.c.campaign_id,
            R.c.child_id,
            R.c.hukou_town,
            func.coalesce(R.c.hukou_school_district, district_code),
            literal(due_on, Date),
            literal("open"),
            literal(run),
            literal(True),
            literal(1),
        )
        .where(R.c.campaign_id == campaign_id, R.c.outcome == "unaccounted")
        .where(not_(exists().where(T.c.campaign_id == campaign_id, T.c.child_id == R.c.child_id)))
    )
    created = (
        await session.execute(
            insert(T)
            .from_select(TASK_COLUMNS, fresh)
            .returning(T.c.id, T.c.child_id, T.c.hukou_town, T.c.hukou_school_district)
        )
    ).all()
    counts = {
        "tasks_created": len(created),
        "tasks_superseded": len(superseded_tasks),
        "tasks_reopened": sum(reopened for reopened, _moved in before.values()),
        "tasks_moved": moved_count,
    }
    return counts, [AnnouncedTask(*r) for r in created] + again, superseded_tasks


TASK_COLUMNS = [
    "id",
    "campaign_id",
    "child_id",
    "hukou_town",
    "hukou_school_district",
    "due_on",
    "state",
    "created_run",
    "published",
    "version",
]


async def classify_and_sync_postgresql(
    session: AsyncSession,
    *,
    campaign_id: str,
    run: int,
    as_of: dt.date,
    cutoff: dt.date,
    due_on: dt.date,
    district_code: str,
) -> tuple[dict[str, int], dict[str, int], list[AnnouncedTask], list[SupersededTask]]:
    """PostgreSQL, ``verification_results`` not partitioned (schema before 0004): the whole run in one
    statement of data-modifying CTEs, so nothing just written is read back.

    ``ins`` writes the results and returns each child's outcome; the unaccounted ones (``u``, a few per
    cent) drive the task changes (:func:`_sync_tasks_statement`).
    """
    await session.execute(delete(R).where(R.c.campaign_id == campaign_id))
    ins = (
        insert(R)
        .from_select(RESULT_COLUMNS, classification_select(campaign_id, run, as_of, cutoff))
        .returning(R.c.outcome, R.c.child_id, R.c.hukou_town, R.c.hukou_school_district)
        .cte("ins")
    )
    return await _sync_tasks_statement(
        session, ins, campaign_id=campaign_id, run=run, due_on=due_on, district_code=district_code
    )


async def _sync_tasks_statement(
    session: AsyncSession,
    results,  # type: ignore[no-untyped-def]
    *,
    campaign_id: str,
    run: int,
    due_on: dt.date,
    district_code: str,
    fresh_table: str | None = None,
) -> tuple[dict[str, int], dict[str, int], list[AnnouncedTask], list[SupersededTask]]:
    """One statement: the counts per outcome of ``results`` (the run's results: the rows an ``INSERT``
    returns, or the run's fresh partition ``fresh_table``), and the task changes driven by its unaccounted
    children (``u``, a few per cent), which touch disjoint rows (unresolved tasks of children no longer in
    ``u``; superseded tasks of children in ``u`` and unresolved ones whose child's hukou area moved;
    children in ``u`` without a task), so one snapshot for all of them is correct. It answers the final
    counts per outcome (resolved tasks applied), the task counts, the tasks to announce (created, reopened
    or moved) and the tasks superseded, as in :func:`sync_tasks` (published by the caller in the same
    transaction; they are written as published).
    """
    values = {"campaign_id": campaign_id, "run": run, "due_on": due_on, "district_code": district_code}
    if fresh_table is None:
        # values bound into the statement, not passed as execution parameters: SQLAlchemy would take
        # parameters named like the tasks' columns (campaign_id, due_on) for SET clauses of the UPDATEs
        # in its CTEs, and fail to bind the rest
        rows = (await session.execute(_sync_tasks_answer(results).params(values))).all()
    else:
        # compiled once per process against a stand-in name, swapped for this run's table (a table
        # name new at every run would miss SQLAlchemy's statement cache and compile it every time)
        conn = await session.connection()
        sql, params = _sync_tasks_sql(conn.dialect)
        sql = sql.replace(FRESH_TABLE_STAND_IN, fresh_table)
        rows = list((await conn.exec_driver_sql(sql, {**params, **values})).all())
    by_outcome: dict[str, int] = {}
    resolved: dict[str, int] = {}
    task_counts = {"tasks_created": 0, "tasks_superseded": 0, "tasks_reopened": 0, "tasks_moved": 0}
    created: list[AnnouncedTask] = []
    moved: list[AnnouncedTask] = []
    reopened: list[AnnouncedTask] = []
    superseded: list[SupersededTask] = []
    for row in rows:
        kind = row[0]
        if kind == "outcome":
            by_outcome[str(row[1])] = int(row[2])
        elif kind == "task":
            created.append(AnnouncedTask(row[1], row[2], row[3], row[4]))
        elif kind == "moved":
            moved.append(AnnouncedTask(row[1], row[2], row[3], row[4], int(row[5])))
        elif kind == "again":  # reopened where it was
            reopened.append(AnnouncedTask(row[1], row[2], row[3], row[4], int(row[5])))
        elif kind == "superseded":
            superseded.append(SupersededTask(row[1], row[2], int(row[5])))
        elif kind == "resolved":
            resolved[str(row[1])] = int(row[2])
        else:
            task_counts[f"tasks_{kind}"] = int(row[2])
    task_counts["tasks_created"] = len(created)
    task_counts["tasks_moved"] = len(moved)
    task_counts["tasks_superseded"] = len(superseded)
    return final_counts(by_outcome, resolved), task_counts, created + moved + reopened, superseded


FRESH_TABLE_STAND_IN = "verification_results_fresh_stand_in"
"""The name the cached statement is compiled with; replaced by the run's partition name, which
:func:`partition_name` builds from a UUID (safe to put in SQL)."""


@functools.cache
def _sync_tasks_sql(dialect: Dialect) -> tuple[str, dict[str, Any]]:
    fresh = table(
        FRESH_TABLE_STAND_IN,
        *(column(c) for c in ("child_id", "outcome", "hukou_town", "hukou_school_district")),
    )
    compiled = _sync_tasks_answer(fresh).compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return compiled.string, dict(compiled.params)


def _sync_tasks_answer(results):  # type: ignore[no-untyped-def]
    """The statement of :func:`_sync_tasks_statement`, with bound parameters ``campaign_id``, ``run``,
    ``due_on``, ``district_code``."""
    campaign_id = bindparam("campaign_id", "", type_=String(36))
    run = bindparam("run", 0, type_=Integer)
    due_on = bindparam("due_on", dt.date.min, type_=Date)
    district_code = bindparam("district_code", "", type_=String(14))
    u = (
        select(results.c.child_id, results.c.hukou_town, results.c.hukou_school_district)
        .where(results.c.outcome == "unaccounted")
        .cte("u")
    )
    in_u = exists().where(u.c.child_id == T.c.child_id)
    sup = (
        update(T)
        .where(T.c.campaign_id == campaign_id, T.c.state.in_(UNRESOLVED), not_(in_u))
        .values(state="superseded", version=T.c.version + 1)
        .returning(T.c.id, T.c.hukou_school_district, T.c.version)
        .cte("sup")
    )
    # Superseded tasks of children in ``u`` reopen; those and the unresolved ones take the child's hukou
    # area now (``moved``: it differs from the task's, which the alias ``old`` holds: RETURNING sees the
    # new values of the updated table).
    old = T.alias("old")
    district_now = func.coalesce(u.c.hukou_school_district, district_code)
    moved = or_(
        old.c.hukou_school_district != district_now, old.c.hukou_town.is_distinct_from(u.c.hukou_town)
    )
    reo = (
        update(T)
        .where(
            T.c.id == old.c.id,
            old.c.child_id == u.c.child_id,
            old.c.campaign_id == campaign_id,
            or_(old.c.state == "superseded", and_(old.c.state.in_(UNRESOLVED), moved)),
        )
        .values(
            state=case((old.c.state == "superseded", literal("open")), else_=old.c.state),
            hukou_school_district=district_now,
            hukou_town=u.c.hukou_town,
            version=old.c.version + 1,
        )
        .returning(
            T.c.id,
            T.c.child_id,
            T.c.hukou_town,
            T.c.hukou_school_district,
            T.c.version,
            (old.c.state == "superseded").label("reopened"),
            moved.label("moved"),
        )
        .cte("reo")
    )
    fresh = (
        insert(T)
        .from_select(
            TASK_COLUMNS,
            select(
                _new_id("postgresql"),
                campaign_id,
                u.c.child_id,
                u.c.hukou_town,
                func.coalesce(u.c.hukou_school_district, district_code),
                due_on,
                literal("open"),
                run,
                literal(True),
                literal(1),
            ).where(not_(exists().where(T.c.campaign_id == campaign_id, T.c.child_id == u.c.child_id))),
        )
        .returning(T.c.id, T.c.child_id, T.c.hukou_town, T.c.hukou_school_district)
        .cte("fresh")
    )
    none = literal(None, String)
    n = func.count().cast(String)
    answer = union_all(
        select(literal("outcome"), results.c.outcome, n, none, none, none).group_by(results.c.outcome),
        select(
            literal("superseded"),
            sup.c.id,
            sup.c.hukou_school_district,
            none,
            none,
            sup.c.version.cast(String),
        ),
        select(literal("reopened"), none, n, none, none, none).select_from(reo).where(reo.c.reopened),
        # resolved tasks of children unaccounted in this run: the final outcome is the task's
        select(literal("resolved"), T.c.outcome, n, none, none, none)
        .where(T.c.campaign_id == campaign_id, T.c.state == "resolved", in_u)
        .group_by(T.c.outcome),
        select(
            literal("task"),
            fresh.c.id,
            fresh.c.child_id,
            fresh.c.hukou_town,
            fresh.c.hukou_school_district,
            none,
        ),
        select(
            literal("moved"),
            reo.c.id,
            reo.c.child_id,
            reo.c.hukou_town,
            reo.c.hukou_school_district,
            reo.c.version.cast(String),
        ).where(reo.c.moved),
        # reopened where it was (a reopened task that moved is among the moved)
        select(
            literal("again"),
            reo.c.id,
            reo.c.child_id,
            reo.c.hukou_town,
            reo.c.hukou_school_district,
            reo.c.version.cast(String),
        ).where(reo.c.reopened, not_(reo.c.moved)),
    )
    return answer


# --- PostgreSQL: one partition per campaign, swapped in -----------------------------------------------

PARTITIONS = """
SELECT c.relname, p.relkind
FROM pg_class p
LEFT JOIN pg_inherits i ON i.inhparent = p.oid
LEFT JOIN pg_class c ON c.oid = i.inhrelid AND pg_get_expr(c.relpartbound, c.oid) = :bound
WHERE p.oid = to_regclass('verification_results')
"""


@functools.cache
def _fresh_results_select(dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """The classification as SQL with bound parameters (``campaign_id``, ``run``, ``as_of``, ``earliest``,
    ``latest``) and the values of its constant ones, compiled once per process: compiling it took
    5–60 ms per run (the ``CREATE TABLE … AS`` takes raw SQL, out of SQLAlchemy's statement cache)."""
    stmt = _classification(
        bindparam("campaign_id", "", type_=String(36)),  # the values are given at each run
        bindparam("run", 0, type_=Integer),
        bindparam("as_of", dt.date.min, type_=Date),
        bindparam("earliest", dt.date.min, type_=Date),
        bindparam("latest", dt.date.min, type_=Date),
        ordered=False,
        typed=True,
    )
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    return compiled.string, dict(compiled.params)


def partition_name(campaign_id: str, run: int) -> str:
    """``verification_results_<campaign uuid hex>_<run>`` (≤ 63 characters); the campaign id must be a
    UUID (it is interpolated into DDL, which takes no parameters)."""
    return f"verification_results_{uuid.UUID(campaign_id).hex}_{run}"


async def classify_and_swap_postgresql(
    session: AsyncSession,
    *,
    campaign_id: str,
    run: int,
    as_of: dt.date,
    cutoff: dt.date,
    due_on: dt.date,
    district_code: str,
    publish: Callable[[list[AnnouncedTask], list[SupersededTask]], Awaitable[int]],
) -> tuple[dict[str, int], dict[str, int], list[AnnouncedTask], int] | None:
    """PostgreSQL, ``verification_results`` partitioned by campaign (migration 0004): the run writes its
    results into a fresh table and swaps it in for the campaign's partition. ``None`` when the table is
    not partitioned or the campaign id is not a UUID (the caller then inserts in place).

    1. ``CREATE TABLE … AS`` the classification: a bulk write of new pages, and parallel (the
       classification's joins run in the workers; ``INSERT … SELECT`` never runs in parallel), with no
       index maintained row by row and no dead tuples of the previous run left behind in an index.
    2. The counts and the task changes in one statement (:func:`_sync_tasks_statement`) over the fresh
       table.
    3. One ``ALTER TABLE`` (NOT NULL, ``CHECK (campaign_id = …)`` so attaching need not scan again, the
       primary key built in one sort) and the partial index of the unaccounted, in one round trip. While
       the server builds them, this process builds the tasks' events (``publish``: Python;
       ``ChildUnaccounted`` for the tasks created, reopened or moved, ``VerificationTaskSuperseded`` for
       those superseded); their outbox write follows on the same connection (the driver's connection
       lock orders the statements).
    4. Swap, in one round trip: the previous partition of the campaign is dropped, the fresh one attached
       (its indexes become the partitions of the parent's). Until the transaction commits, readers see
       the previous results; the swap's locks on the parent are held only from here to the commit.

    Returns the counts per outcome, the task counts, the tasks announced and the events published.
    """
    try:
        name = partition_name(campaign_id, run)
    except ValueError:
        return None
    bound = f"FOR VALUES IN ('{campaign_id}')"
    rows = (await session.execute(text(PARTITIONS), {"bound": bound})).all()
    if not rows or rows[0][1] != "p":
        return None
    previous = [r[0] for r in rows if r[0] is not None]
    conn = await session.connection()
    select_sql, params = _fresh_results_select(conn.dialect)
    earliest, latest = birth_bounds(cutoff)
    values = {"campaign_id": campaign_id, "run": run, "as_of": as_of, "earliest": earliest, "latest": latest}
    await conn.exec_driver_sql(f"CREATE TABLE {name} AS {select_sql}", {**params, **values})
    by_outcome, task_counts, created, superseded = await _sync_tasks_statement(
        session,
        None,
        campaign_id=campaign_id,
        run=run,
        due_on=due_on,
        district_code=district_code,
        fresh_table=name,
    )
    not_null = ", ".join(f"ALTER {c.name} SET NOT NULL" for c in R.columns if not c.nullable)
    # The partition's two indexes: the primary key and the parent's partial index of the unaccounted.
    # Built here rather than before the counts-and-tasks statement, which reads the unaccounted by a scan
    # instead: they lie on nearly every page of the fresh table (1M: 24,750 rows on 15,637 pages), so the
    # index spared that statement no reading (measured the same with and without it), and this saves a
    # round trip.
    indexes = (
        f"ALTER TABLE {name} {not_null}, ADD CONSTRAINT {name}_campaign CHECK (campaign_id = '{campaign_id}'), "
        f"ADD CONSTRAINT {name}_pkey PRIMARY KEY (campaign_id, child_id); "
        f"CREATE INDEX {name}_unaccounted ON {name} (campaign_id, child_id) WHERE outcome = 'unaccounted'"
    )
    # Sent on the driver connection itself (two statements, no parameters: one round trip): they run on
    # the server while ``publish`` builds the events here; its outbox write then waits for the driver's
    # connection lock (same transaction).
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    building = asyncio.ensure_future(driver.execute(indexes))
    try:
        await asyncio.sleep(0)  # let it send
        published = await publish(created, superseded)
    finally:
        await building
    # The swap, one round trip; the partition's CHECK only served the attach (the partition constraint
    # now holds it).
    swap = [f'DROP TABLE "{old}"' for old in previous]
    swap.append(f"ALTER TABLE verification_results ATTACH PARTITION {name} {bound}")
    swap.append(f"ALTER TABLE {name} DROP CONSTRAINT {name}_campaign")
    await driver.execute("; ".join(swap))
    return by_outcome, task_counts, created, published


def final_counts(classified: dict[str, int], resolved: dict[str, int]) -> dict[str, int]:
    """Children per final outcome: the run's classification, each resolved task of a child the run left
    unaccounted moving that child to the task's outcome."""
    counts = dict(classified)
    counts.setdefault("unaccounted", 0)
    for outcome, n in resolved.items():
        counts["unaccounted"] -= n
        counts[outcome] = counts.get(outcome, 0) + n
    return {k: v for k, v in counts.items() if v}
