"""Queries of the calendar domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notify.calendar.models import CalendarArrangement


async def all_arrangements(session: AsyncSession) -> Sequence[CalendarArrangement]:
    return (
        (await session.execute(select(CalendarArrangement).order_by(col(CalendarArrangement.year))))
        .scalars()
        .all()
    )


async def get_arrangement(session: AsyncSession, year: int) -> CalendarArrangement | None:
    return await session.get(CalendarArrangement, year)
