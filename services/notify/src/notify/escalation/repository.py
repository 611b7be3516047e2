"""Queries of the escalation domain."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.jurisdiction import within_jurisdiction
from baoxue.auth.principal import Principal
from notify.escalation.models import Escalation, EscalationStep


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
