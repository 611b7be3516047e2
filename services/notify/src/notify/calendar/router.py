"""Calendar endpoints: load a year's arrangement, count working days, the statutory calendar."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from notify.calendar import repository, service
from notify.calendar.schemas import (
    ArrangementLoad,
    ArrangementPublic,
    CalendarYears,
    DeadlineQuote,
    StatutoryCalendar,
    StatutoryItemPublic,
)
from notify.calendar.statutory import statutory_items
from notify.settings import NotifySettings

router = APIRouter(prefix="/calendar", tags=["calendar"])
Reader = Annotated[Principal, Depends(requires("calendar:read"))]


@router.get("/years", summary="Years with an official holiday arrangement")
async def list_years(session: SessionDep, ctx: Ctx, _: Reader) -> CalendarYears:
    calendar = await service.current_calendar(session=session, ctx=ctx)
    loaded = [
        ArrangementPublic(
            year=row.year,
            source=row.source,
            holidays=json.loads(row.holidays),
            workdays=json.loads(row.workdays),
            origin="database",
        )
        for row in await repository.all_arrangements(session)
    ]
    return CalendarYears(years=list(calendar.years), loaded=loaded)


@router.post(
    "/arrangements",
    status_code=status.HTTP_201_CREATED,
    summary="Load a year's State Council holiday arrangement (administrators)",
)
async def load_arrangement(
    body: ArrangementLoad,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("calendar:admin"))],
) -> ArrangementPublic:
    row = await service.load_arrangement(session=session, ctx=ctx, principal=principal, body=body)
    return ArrangementPublic(
        year=row.year,
        source=row.source,
        holidays=json.loads(row.holidays),
        workdays=json.loads(row.workdays),
        origin="database",
    )


@router.get("/deadline", summary="The date N working days after a start date")
async def quote_deadline(
    session: SessionDep,
    ctx: Ctx,
    _: Reader,
    start: Annotated[dt.date, Query(description="Counting starts the day after.")],
    workdays: Annotated[int, Query(ge=0, le=400)],
) -> DeadlineQuote:
    deadline = await service.due_after(session=session, ctx=ctx, start=start, workdays=workdays)
    return DeadlineQuote(
        start=start,
        workdays=workdays,
        due=deadline.due,
        exact=not deadline.warnings,
        warnings=list(deadline.warnings),
    )


@router.get("/statutory", summary="The notice's statutory calendar for a year")
async def statutory_calendar(
    session: SessionDep, ctx: Ctx, _: Reader, year: Annotated[int, Query(ge=2019, le=2100)]
) -> StatutoryCalendar:
    calendar = await service.current_calendar(session=session, ctx=ctx)
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    items = [
        StatutoryItemPublic(
            code=i.code,
            period=i.period,
            due=i.due,
            owners=list(i.owners),
            what_en=i.what_en,
            what_zh=i.what_zh,
            tracked=i.tracked,
            is_workday=service.is_workday_or_none(calendar, i.due),
        )
        for i in statutory_items(year, settings)
    ]
    warnings = [] if calendar.covers(year) else [f"calendar_year_missing:{year}"]
    return StatutoryCalendar(year=year, items=items, warnings=warnings)
