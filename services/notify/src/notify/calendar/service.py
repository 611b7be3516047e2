"""Working days for notify: the bundled calendar plus the years an administrator loaded.

Every replica keeps one `WorkdayCalendar` in ``ctx.extras``; years loaded through the API are stored in
the database and added to each replica's calendar the next time it counts (``current_calendar``).
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.errors import Conflict, Problem
from baoxue.service import ServiceContext
from baoxue.workdays import ArrangementError, CalendarYearMissing, Deadline, WorkdayCalendar, YearArrangement
from notify.calendar import repository
from notify.calendar.models import CalendarArrangement
from notify.calendar.schemas import ArrangementLoad

_KEY = "workday_calendar"


def _arrangement(row: CalendarArrangement) -> YearArrangement:
    return YearArrangement(
        year=row.year,
        holidays=frozenset(dt.date.fromisoformat(d) for d in json.loads(row.holidays)),
        workdays=frozenset(dt.date.fromisoformat(d) for d in json.loads(row.workdays)),
        source=row.source,
    )


def process_calendar(ctx: ServiceContext) -> WorkdayCalendar:
    """This replica's calendar (package years + bundled files + ``calendar_dir``), built on first use."""
    calendar = ctx.extras.get(_KEY)
    if calendar is None:
        calendar = WorkdayCalendar.load(getattr(ctx.settings, "calendar_dir", None))
        ctx.extras[_KEY] = calendar
    return calendar  # type: ignore[no-any-return]


async def current_calendar(*, session: AsyncSession, ctx: ServiceContext) -> WorkdayCalendar:
    """The calendar with every year stored in the database added (a stored year never contradicts a
    bundled one: loading refuses that)."""
    calendar = process_calendar(ctx)
    for row in await repository.all_arrangements(session):
        if not calendar.covers(row.year):
            calendar.add_year(_arrangement(row))
    return calendar


async def load_arrangement(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, body: ArrangementLoad
) -> CalendarArrangement:
    """Validate a year's arrangement, store it and apply it to the calendar.

    Refuses (422 ``arrangement_invalid``) dates outside the year, a day both holiday and make-up day, a
    make-up day on a weekday; refuses (409 ``arrangement_conflict``) a year that is already known with a
    different effect. Loading the same arrangement again is accepted and changes nothing.
    """
    arrangement = YearArrangement(
        year=body.year,
        holidays=frozenset(body.holidays),
        workdays=frozenset(body.workdays),
        source=body.source,
    )
    try:
        WorkdayCalendar([arrangement])
    except ArrangementError as exc:
        raise Problem(str(exc), code="arrangement_invalid", status=422) from None
    calendar = await current_calendar(session=session, ctx=ctx)
    try:
        calendar.add_year(arrangement)
    except ArrangementError as exc:
        raise Conflict(str(exc), code="arrangement_conflict") from None
    row = await repository.get_arrangement(session, body.year)
    if row is None:
        row = CalendarArrangement(
            year=body.year,
            holidays=json.dumps(sorted(d.isoformat() for d in body.holidays)),
            workdays=json.dumps(sorted(d.isoformat() for d in body.workdays)),
            source=body.source,
            loaded_by=principal.subject,
        )
        session.add(row)
        await session.flush()
    return row


async def due_after(*, session: AsyncSession, ctx: ServiceContext, start: dt.date, workdays: int) -> Deadline:
    """`workdays` working days after `start`; Monday–Friday with a ``calendar_year_missing:<year>``
    warning for a year without data (never a silent guess)."""
    calendar = await current_calendar(session=session, ctx=ctx)
    return calendar.add_workdays_lenient(start, workdays)


def is_workday_or_none(calendar: WorkdayCalendar, day: dt.date) -> bool | None:
    try:
        return calendar.is_workday(day)
    except CalendarYearMissing:
        return None
