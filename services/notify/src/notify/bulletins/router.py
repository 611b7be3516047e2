"""Bulletin and scorecard endpoints (JSON, Excel, PDF)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from notify.bulletins import exports, repository, service
from notify.bulletins.models import Bulletin
from notify.bulletins.schemas import BulletinPublic, CriticismEntry, Scorecard
from notify.settings import NotifySettings

router = APIRouter(tags=["bulletins"])
Reader = Annotated[Principal, Depends(requires("bulletin:read"))]
ScoreReader = Annotated[Principal, Depends(requires("scorecard:read"))]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Year = Annotated[int, Query(ge=2019, le=2100)]
Level = Annotated[Literal["school", "town"], Query()]


def _public(b: Bulletin) -> BulletinPublic:
    return BulletinPublic(
        id=b.id,
        campaign_id=b.campaign_id,
        kind=b.kind,
        year=b.year,
        as_of=b.as_of,
        result_version=b.result_version,
        children_in_scope=b.children_in_scope,
        counts_by_outcome=json.loads(b.counts_by_outcome),
        counts_by_town=json.loads(b.counts_by_town),
        tasks_total=b.tasks_total,
        tasks_open=b.tasks_open,
        published_at=b.published_at,
    )


@router.get("/bulletins", summary="District bulletins (frozen campaign results)")
async def list_bulletins(
    session: SessionDep,
    _: Reader,
    limit: Limit = 20,
    cursor: Cursor = None,
    year: Annotated[int | None, Query(ge=2019, le=2100)] = None,
) -> Page[BulletinPublic]:
    rows = await repository.bulletins(session, year=year, after=decode_cursor(cursor, str), limit=limit)
    return page_of([_public(r) for r in rows], limit, lambda b: b.id)


@router.get("/bulletins/{bulletin_id}", summary="One bulletin: the figures exactly as enrollment froze them")
async def get_bulletin(bulletin_id: str, session: SessionDep, _: Reader) -> BulletinPublic:
    return _public(await service.get(session=session, bulletin_id=bulletin_id))


@router.get(
    "/bulletins/{bulletin_id}/xlsx", response_class=Response, summary="The bulletin as an Excel workbook"
)
async def bulletin_xlsx(bulletin_id: str, session: SessionDep, ctx: Ctx, _: Reader) -> Response:
    view = service.view_of(ctx, await service.get(session=session, bulletin_id=bulletin_id))
    return Response(
        exports.to_xlsx(view),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="bulletin-{bulletin_id}.xlsx"'},
    )


@router.get(
    "/bulletins/{bulletin_id}/pdf", response_class=Response, summary="The bulletin as PDF with a chart"
)
async def bulletin_pdf(bulletin_id: str, session: SessionDep, ctx: Ctx, _: Reader) -> Response:
    view = service.view_of(ctx, await service.get(session=session, bulletin_id=bulletin_id))
    pdf = await asyncio.to_thread(exports.to_pdf, view)
    return Response(pdf, media_type="application/pdf")


@router.post(
    "/bulletins/{bulletin_id}/publication", summary="Publish to every town and the inspection office"
)
async def publish(
    bulletin_id: str,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("bulletin:publish"))],
) -> BulletinPublic:
    return _public(
        await service.publish(session=session, ctx=ctx, principal=principal, bulletin_id=bulletin_id)
    )


async def _scorecards(
    session: SessionDep, ctx: Ctx, principal: Principal, year: int, level: str
) -> list[dict[str, Any]]:
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    rows = await service.scorecards(
        session=session,
        principal=principal,
        year=year,
        level=level,
        special_quota=settings.visit_quota_special_group,
    )
    for row in rows:
        org = ctx.directory.get(row["org"])
        row["name_zh"] = org.name_zh if org is not None else None
    return rows


@router.get("/scorecards", tags=["scorecards"], summary="Scorecards per school or per town")
async def scorecards(
    session: SessionDep, ctx: Ctx, principal: ScoreReader, year: Year, level: Level = "town"
) -> list[Scorecard]:
    return [Scorecard(**row) for row in await _scorecards(session, ctx, principal, year, level)]


@router.get("/scorecards/xlsx", tags=["scorecards"], response_class=Response, summary="Scorecards as Excel")
async def scorecards_xlsx(
    session: SessionDep, ctx: Ctx, principal: ScoreReader, year: Year, level: Level = "town"
) -> Response:
    rows = await _scorecards(session, ctx, principal, year, level)
    return Response(
        exports.scorecards_xlsx(f"{year}年考核", rows),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="scorecards-{year}-{level}.xlsx"'},
    )


@router.get("/scorecards/csv", tags=["scorecards"], response_class=Response, summary="Scorecards as CSV")
async def scorecards_csv(
    session: SessionDep, ctx: Ctx, principal: ScoreReader, year: Year, level: Level = "town"
) -> Response:
    rows = await _scorecards(session, ctx, principal, year, level)
    return Response(
        exports.scorecards_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="scorecards-{year}-{level}.csv"'},
    )


@router.get("/scorecards/pdf", tags=["scorecards"], response_class=Response, summary="Scorecards as PDF")
async def scorecards_pdf(
    session: SessionDep, ctx: Ctx, principal: ScoreReader, year: Year, level: Level = "town"
) -> Response:
    rows = await _scorecards(session, ctx, principal, year, level)
    title = f"山亭区{year}年控辍保学工作考核（{'分学校' if level == 'school' else '分镇街'}）"
    pdf = await asyncio.to_thread(exports.scorecards_pdf, title, rows)
    return Response(pdf, media_type="application/pdf")


@router.get("/scorecards/criticism", tags=["scorecards"], summary="The publishable criticism list (点名批评)")
async def criticism(
    session: SessionDep, ctx: Ctx, principal: ScoreReader, year: Year, level: Level = "town"
) -> list[CriticismEntry]:
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    rows = await _scorecards(session, ctx, principal, year, level)
    names = {row["org"]: row["name_zh"] for row in rows}
    return [
        CriticismEntry(org=entry["org"], name_zh=names.get(entry["org"]), reasons=entry["reasons"])
        for entry in service.criticism(rows, min_timeliness=settings.criticism_min_timeliness)
    ]
