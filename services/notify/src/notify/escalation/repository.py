"""Queries of the escalation domain."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.jurisdiction import within_jurisdiction
from baoxue.auth.principal import Principal
from notify.escalation.models import Escalation, EscalationStep


async def get(session: AsyncSession, escalation_id: str, *, lock: bool = False) -> Escalation | None:
    statement = select(Escalation).where(Escalation.id == escalation_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def active_for_case(session: AsyncSession, case_id: str) -> Escalation | None:
    statement = (
        select(Escalation)
        .where(Escalation.case_id == case_id, Escalation.state == "active")
        .with_for_update()
    )
    return (await session.execute(statement)).scalars().first()


async def steps(session: AsyncSession, escalation_id: str) -> list[EscalationStep]:
    statement = (
        select(EscalationStep)
        .where(EscalationStep.escalation_id == escalation_id)
        .order_by(EscalationStep.id)
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
        within_jurisdiction(principal, Escalation.school_code, Escalation.hukou_town)
    )
    if state:
        statement = statement.where(Escalation.state == state)
    if level:
        statement = statement.where(Escalation.level == level)
    if case_id:
        statement = statement.where(Escalation.case_id == case_id)
    if after:
        statement = statement.where(Escalation.id > after)
    return list((await session.execute(statement.order_by(Escalation.id).limit(limit + 1))).scalars())
