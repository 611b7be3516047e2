"""Queries of the dropout reports (one aggregate over the case facts)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notify.bulletins.models import CaseFact
from notify.reports.models import DropoutReport


async def counts(session: AsyncSession, *, start: dt.date, end: dt.date) -> list[Any]:
    """Per town (the school's town, else the child's hukou town) and school: cases opened (suspected),
    confirmed, returned, escalated and reopened within [start, end]. Reopened (复学后再次辍学) counts a
    case once whether the child who had returned dropped out again after closure (the case reopened) or
    before it (the open case's relapse)."""
    town = func.coalesce(func.substr(col(CaseFact.school_code), 1, 9), col(CaseFact.hukou_town))
    within = {
        "suspected": col(CaseFact.opened_on).between(start, end),
        "confirmed": col(CaseFact.confirmed_on).between(start, end),
        "returned": col(CaseFact.returned_on).between(start, end),
        "escalated": col(CaseFact.escalated_on).between(start, end),
        "reopened": or_(
            col(CaseFact.reopened_on).between(start, end), col(CaseFact.relapsed_on).between(start, end)
        ),
    }
    statement: Any = (
        select(
            town.label("town"),
            col(CaseFact.school_code).label("school"),
            *[func.sum(case((condition, 1), else_=0)).label(name) for name, condition in within.items()],
        )
        .where(or_(*within.values()), town.is_not(None))
        .group_by(town, col(CaseFact.school_code))
        .order_by(town, col(CaseFact.school_code))
    )
    return list((await session.execute(statement)).all())


async def latest_version(session: AsyncSession, period: str) -> int:
    statement = select(func.max(col(DropoutReport.version))).where(col(DropoutReport.period) == period)
    return int((await session.execute(statement)).scalar_one() or 0)


async def get(session: AsyncSession, report_id: str) -> DropoutReport | None:
    return await session.get(DropoutReport, report_id)


async def page(
    session: AsyncSession, *, period: str | None, after: str | None, limit: int
) -> list[DropoutReport]:
    statement = select(DropoutReport)
    if period:
        statement = statement.where(col(DropoutReport.period) == period)
    if after:
        statement = statement.where(col(DropoutReport.id) > after)
    return list((await session.execute(statement.order_by(col(DropoutReport.id)).limit(limit + 1))).scalars())
