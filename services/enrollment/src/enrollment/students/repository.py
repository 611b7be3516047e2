"""Every query of student records, transfers and annotations; jurisdiction filters live here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import String, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.jurisdiction import within_jurisdiction
from baoxue.auth.principal import Principal
from baoxue.contracts.enrollment import StudentLinked
from baoxue.db import hold_transaction_lock, utcnow
from baoxue.service import ServiceContext
from enrollment.children.models import ChildView
from enrollment.children.repository import rows_source, update_from
from enrollment.students.models import ACTIVE_STATUSES, IncapacityAnnotation, StudentRecord, StudentTransfer


def visible(principal: Principal):  # type: ignore[no-untyped-def]
    """Case-role scope: the enrolling school's chain, or the school district of the child's hukou place."""
    return within_jurisdiction(
        principal, col(StudentRecord.school_code), col(StudentRecord.hukou_school_district)
    )


async def get_visible(session: AsyncSession, principal: Principal, student_id: str) -> StudentRecord | None:
    stmt = select(StudentRecord).where(col(StudentRecord.id) == student_id, visible(principal))
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_for_update(session: AsyncSession, student_id: str) -> StudentRecord | None:
    stmt = select(StudentRecord).where(col(StudentRecord.id) == student_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_for_child(session: AsyncSession, id_blind_index: str) -> StudentRecord | None:
    stmt = select(StudentRecord).where(
        col(StudentRecord.id_blind_index) == id_blind_index,
        col(StudentRecord.status).in_(ACTIVE_STATUSES),  # type: ignore[attr-defined]
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_for_child_id(session: AsyncSession, child_id: str) -> Sequence[StudentRecord]:
    stmt = (
        select(StudentRecord)
        .where(col(StudentRecord.child_id) == child_id, col(StudentRecord.status).in_(ACTIVE_STATUSES))
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().all()


async def by_number_index(session: AsyncSession, number_index: str) -> StudentRecord | None:
    stmt = select(StudentRecord).where(col(StudentRecord.student_number_index) == number_index)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    limit: int,
    after: str | None,
    school_code: str | None = None,
    status: str | None = None,
) -> Sequence[StudentRecord]:
    stmt = select(StudentRecord).where(visible(principal))
    if school_code:
        stmt = stmt.where(col(StudentRecord.school_code) == school_code)
    if status:
        stmt = stmt.where(col(StudentRecord.status) == status)
    if after:
        stmt = stmt.where(col(StudentRecord.id) > after)  # type: ignore[operator]
    stmt = stmt.order_by(col(StudentRecord.id)).limit(limit + 1)  # type: ignore[arg-type]
    return (await session.execute(stmt)).scalars().all()


LinkedRow = tuple[str, str, str, str, int, "str | None"]  # id, child_id, school, status, version, district


async def link_child(
    session: AsyncSession, *, child_id: str, id_blind_index: str | None, hukou_school_district: str | None
) -> list[LinkedRow]:
    """Attach records to the read-model child (by id or blind index) and refresh the hukou district.

    Returns the records linked now (they had no child): their version is bumped, and the caller
    publishes :class:`~baoxue.contracts.enrollment.StudentLinked` for each (:func:`publish_linked`).
    """
    await session.execute(
        update(StudentRecord)
        .where(col(StudentRecord.child_id) == child_id)
        .values(hukou_school_district=hukou_school_district)
    )
    if not id_blind_index:
        return []
    s = StudentRecord.__table__  # type: ignore[attr-defined]
    result = await session.execute(
        update(s)
        .where(s.c.child_id.is_(None), s.c.id_blind_index == id_blind_index)
        .values(
            child_id=child_id,
            hukou_school_district=hukou_school_district,
            version=s.c.version + 1,
            updated_at=utcnow(),
        )
        .returning(s.c.id, s.c.child_id, s.c.school_code, s.c.status, s.c.version, s.c.hukou_school_district)
    )
    return [(str(i), str(c), sc, st, int(v), d) for i, c, sc, st, v, d in result.all()]


async def link_children(
    session: AsyncSession,
    links: Sequence[tuple[str, str, str | None]],
    districts: Sequence[tuple[str, str | None]],
) -> list[tuple[str, LinkedRow]]:
    """:func:`link_child` of many children at once: ``links`` are ``(blind index, child id, hukou
    district)`` (each blind index once: the child that takes its unlinked records), ``districts`` are
    ``(child id, hukou district)`` (each child once: the district its records end with).

    Two statements whatever the number of children: one ``UPDATE … FROM`` links the records with no
    child (version bumped; returned, with the district of the link, for :func:`publish_linked`), then
    one sets the district of every record of these children, those just linked included. Returns
    ``(blind index, linked row)`` of each record linked.
    """
    dialect = session.get_bind().dialect.name
    s = StudentRecord.__table__  # type: ignore[attr-defined]
    linked: list[tuple[str, LinkedRow]] = []
    if links:
        v = rows_source(dialect, [("b", String), ("c", String), ("d", String)], links)
        stmt = update_from(
            s,
            v,
            dialect,
            key=("id_blind_index", "b"),
            where=[s.c.child_id.is_(None)],
            from_v={"child_id": "c", "hukou_school_district": "d"},
            values={"version": s.c.version + 1, "updated_at": utcnow()},
        )
        result = await session.execute(
            stmt.returning(
                s.c.id_blind_index,
                s.c.id,
                s.c.child_id,
                s.c.school_code,
                s.c.status,
                s.c.version,
                s.c.hukou_school_district,
            )
        )
        linked = [(b, (str(i), str(c), sc, st, int(n), d)) for b, i, c, sc, st, n, d in result.all()]
    if districts:
        v = rows_source(dialect, [("c", String), ("d", String)], districts)
        await session.execute(
            update_from(s, v, dialect, key=("child_id", "c"), from_v={"hukou_school_district": "d"})
        )
    return linked


async def publish_linked(session: AsyncSession, ctx: ServiceContext, linked: Sequence[LinkedRow]) -> None:
    """One StudentLinked per record linked, in the linking transaction (the record's version as sequence)."""
    if not linked:
        return
    await ctx.outbox.add_many(
        session,
        [
            (
                StudentLinked(
                    student_id=sid,
                    child_id=child_id,
                    school_code=school,
                    status=status,  # type: ignore[arg-type]
                    hukou_school_district=district,
                ),
                sid,
                version,
            )
            for sid, child_id, school, status, version, district in linked
        ],
    )


# PostgreSQL advisory lock between registering student records and applying the registry's child
# events (one key for the database: a per-child key would need one lock per record of a 5,000-record
# batch, and the shared lock table holds max_locks_per_transaction × max_connections, 6,400 by default).
LINK_LOCK = "baoxue.enrollment.child_link"
LINK_CHUNK = 1000  # blind indexes per IN list


async def hold_link_lock(session: AsyncSession, *, exclusive: bool) -> None:
    """Make registrations and the application of child events see each other's committed rows.

    On PostgreSQL (READ COMMITTED) a registration that looks the child up while a child snapshot is
    being applied sees neither the other's uncommitted row: the record was stored with no child and
    the consumer's link missed it, for good. Registrations hold this transaction lock shared (they
    never wait for each other), the consumer exclusive, each before it reads what the other writes;
    whoever comes second waits for the first to commit and then sees its rows. Take it before
    touching student records (the consumer) or reading the children (registrations): a registration
    holding it then never waits for a lock the consumer holds, so the two cannot deadlock. The cost: a
    consumer batch that applies a snapshot waits for the registrations in flight, and registrations
    wait while such a batch commits. SQLite needs no lock: its writers are serialized, and each side
    links in its write transaction (:func:`link_unlinked` after the insert, ``link_child``).
    """
    await hold_transaction_lock(session, LINK_LOCK, shared=not exclusive)


async def link_unlinked(session: AsyncSession, blinds: Sequence[str]) -> dict[str, LinkedRow]:
    """Link the records of these ID blind indexes that have no child yet to the read-model child, set-based.

    The child chosen is the one :func:`enrollment.children.repository.by_blind_index` finds (an active
    one first). Returns ``{record id: linked row}`` of the records linked now (their version bumped;
    the caller publishes them with :func:`publish_linked`).
    """
    s = StudentRecord.__table__  # type: ignore[attr-defined]
    c = ChildView.__table__  # type: ignore[attr-defined]
    same = c.c.id_blind_index == s.c.id_blind_index
    order = ((c.c.status != "active"), c.c.child_id)
    child = select(c.c.child_id).where(same).order_by(*order).limit(1).scalar_subquery()
    district = select(c.c.hukou_school_district).where(same).order_by(*order).limit(1).scalar_subquery()
    linked: dict[str, LinkedRow] = {}
    unique = sorted(set(blinds))
    for start in range(0, len(unique), LINK_CHUNK):
        result = await session.execute(
            update(s)
            .where(
                s.c.child_id.is_(None),
                s.c.id_blind_index.in_(unique[start : start + LINK_CHUNK]),
                exists().where(same),
            )
            .values(child_id=child, hukou_school_district=district, version=s.c.version + 1)
            .returning(
                s.c.id, s.c.child_id, s.c.school_code, s.c.status, s.c.version, s.c.hukou_school_district
            )
        )
        linked.update({str(i): (str(i), str(ch), sc, st, int(v), d) for i, ch, sc, st, v, d in result.all()})
    return linked


async def open_transfer(session: AsyncSession, student_id: str) -> StudentTransfer | None:
    stmt = select(StudentTransfer).where(
        col(StudentTransfer.student_id) == student_id,
        col(StudentTransfer.state).in_(OPEN_TRANSFER_STATES),  # type: ignore[attr-defined]
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def has_active_record_within(
    session: AsyncSession, principal: Principal, *, child_id: str, id_blind_index: str | None
) -> bool:
    """Whether the child (by id, or by blind index for a record not linked yet) holds an active record at
    a school inside the caller's jurisdiction."""
    same_child = col(StudentRecord.child_id) == child_id
    if id_blind_index:
        same_child = same_child | (col(StudentRecord.id_blind_index) == id_blind_index)
    stmt = select(col(StudentRecord.id)).where(
        same_child,
        col(StudentRecord.status).in_(ACTIVE_STATUSES),  # type: ignore[attr-defined]
        within_jurisdiction(principal, col(StudentRecord.school_code)),
    )
    return (await session.execute(stmt.limit(1))).first() is not None


OPEN_TRANSFER_STATES = ("requested", "hanging")


async def cancel_open_transfers(session: AsyncSession, student_id: str, *, reason: str, on: dt.date) -> int:
    """Cancel the open transfers of a record that was just closed (one statement); how many."""
    t = StudentTransfer.__table__  # type: ignore[attr-defined]
    result = await session.execute(
        update(t)
        .where(t.c.student_id == student_id, t.c.state.in_(OPEN_TRANSFER_STATES))
        .values(state="cancelled", closed_reason=reason, closed_on=on, version=t.c.version + 1)
        .returning(t.c.id)
    )
    return len(result.all())


async def student_of_transfer(session: AsyncSession, transfer_id: str) -> str | None:
    """The transfer's record id, read without a lock (so the record can be locked before the transfer)."""
    t = StudentTransfer.__table__  # type: ignore[attr-defined]
    return (await session.execute(select(t.c.student_id).where(t.c.id == transfer_id))).scalar_one_or_none()


async def get_transfer(session: AsyncSession, transfer_id: str) -> StudentTransfer | None:
    stmt = select(StudentTransfer).where(col(StudentTransfer.id) == transfer_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def overdue_transfers(session: AsyncSession, today: dt.date) -> Sequence[StudentTransfer]:
    stmt = select(StudentTransfer).where(
        col(StudentTransfer.state) == "requested", col(StudentTransfer.due_on) < today
    )
    return (await session.execute(stmt)).scalars().all()


async def expired_suspensions(session: AsyncSession, today: dt.date) -> Sequence[StudentRecord]:
    stmt = select(StudentRecord).where(
        col(StudentRecord.status) == "suspended",
        col(StudentRecord.suspended_until) < today,  # type: ignore[operator]
    )
    return (await session.execute(stmt)).scalars().all()


async def annotations_of(session: AsyncSession, student_id: str) -> Sequence[IncapacityAnnotation]:
    stmt = (
        select(IncapacityAnnotation)
        .where(col(IncapacityAnnotation.student_id) == student_id)
        .order_by(col(IncapacityAnnotation.assessed_on))  # type: ignore[arg-type]
    )
    return (await session.execute(stmt)).scalars().all()
