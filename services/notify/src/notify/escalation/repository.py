"""Queries of the escalation domain."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.jurisdiction import within_jurisdiction
from baoxue.auth.principal import Principal
from baoxue.db import conflict_insert, hold_transaction_lock, utcnow
from notify.escalation.models import EpisodeEnd, Escalation, EscalationStep


async def lock_case(session: AsyncSession, case_id: str) -> None:
    """Serialise, until the end of the transaction, the handling of the case's escalation events (a
    start, a lift, an end): each of notify's replicas handles them one after the other and sees what the
    one before committed. Without it, two replicas applying two events of one case at the same moment
    both read that no ladder served them yet and each started one (READ COMMITTED does not see the
    other's uncommitted ladder), or a return found no ladder while the confirmation's was being started.

    PostgreSQL: an advisory transaction lock keyed on the case id (`baoxue.db.hold_transaction_lock`).
    Two replicas' batches that lock two cases in opposite orders deadlock; PostgreSQL aborts one, and the
    consumer applies that batch again one event at a time. SQLite has one writer for the whole database,
    so its transactions are serialised already: the consumer holds the write lock from its inbox claim,
    and any other caller takes it here. Take it before reading the case's ladders or episode ends."""
    await hold_transaction_lock(
        session,
        f"notify.escalation.case:{case_id}",
        sqlite_write_lock_on=Escalation.__table__,  # type: ignore[attr-defined]
    )


async def get(session: AsyncSession, escalation_id: str, *, lock: bool = False) -> Escalation | None:
    statement = select(Escalation).where(col(Escalation.id) == escalation_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def active_for_case(session: AsyncSession, case_id: str) -> Escalation | None:
    statement = (
        select(Escalation)
        .where(col(Escalation.case_id) == case_id, col(Escalation.state) == "active")
        .with_for_update()
    )
    return (await session.execute(statement)).scalars().first()


async def latest_episode(session: AsyncSession, case_id: str) -> int | None:
    """The latest case event any of the case's ladders, active or resolved, serves (None if none keeps
    one)."""
    statement = select(func.max(col(Escalation.episode_sequence))).where(col(Escalation.case_id) == case_id)
    return (await session.execute(statement)).scalar_one()


async def latest_end(session: AsyncSession, case_id: str) -> int | None:
    """The sequence of the latest case event that ended an episode of the case (None if none arrived)."""
    statement = select(col(EpisodeEnd.sequence)).where(col(EpisodeEnd.case_id) == case_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def record_end(
    session: AsyncSession, *, case_id: str, sequence: int, resolution: str, on: dt.date
) -> None:
    """Keep the case event `sequence` as the case's latest episode end, unless a later one is kept."""
    table = EpisodeEnd.__table__  # type: ignore[attr-defined]
    statement = conflict_insert(session, table).values(
        case_id=case_id, sequence=sequence, resolution=resolution, ended_on=on, updated_at=utcnow()
    )
    new = statement.excluded
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["case_id"],
            set_={k: new[k] for k in ("sequence", "resolution", "ended_on", "updated_at")},
            where=table.c.sequence < new.sequence,
        )
    )


async def steps(session: AsyncSession, escalation_id: str) -> list[EscalationStep]:
    statement = (
        select(EscalationStep)
        .where(col(EscalationStep.escalation_id) == escalation_id)
        .order_by(col(EscalationStep.id))
    )
    return list((await session.execute(statement)).scalars())


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    after: str | None,
    limit: int,
    state: str | None,
    level: str | None,
    case_id: str | None,
) -> list[Escalation]:
    statement = select(Escalation).where(
        within_jurisdiction(principal, col(Escalation.school_code), col(Escalation.hukou_town))
    )
    if state:
        statement = statement.where(col(Escalation.state) == state)
    if level:
        statement = statement.where(col(Escalation.level) == level)
    if case_id:
        statement = statement.where(col(Escalation.case_id) == case_id)
    if after:
        statement = statement.where(col(Escalation.id) > after)
    return list((await session.execute(statement.order_by(col(Escalation.id)).limit(limit + 1))).scalars())
