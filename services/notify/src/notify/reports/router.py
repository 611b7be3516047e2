"""Dropout report endpoints: generate (bureau), list, read, Excel, PDF."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from baoxue.workdays import today_in_china
from notify.reports import exports, repository, service
from notify.reports.models import DropoutReport
from notify.reports.schemas import DropoutReportCreate, DropoutReportPublic, DropoutRow

router = APIRouter(prefix="/dropout-reports", tags=["dropout reports"])
Reader = Annotated[Principal, Depends(requires("scorecard:read"))]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _public(ctx: Ctx, report: DropoutReport, principal: Principal) -> DropoutReportPublic:
    view = service.view_of(ctx, report, scope=principal.scope)
    rows = [
        DropoutRow(
            town=town,
            town_name=town_name,
            school=school,
            school_name=school_name,
            **dict(zip(service.FIGURES, figures, strict=True)),
        )
        for town, town_name, school, school_name, figures in view.rows
    ]
    return DropoutReportPublic(
        id=report.id,
        period=report.period,
        version=report.version,
        window_start=report.window_start,
        as_of=report.as_of,
        final=report.final,
        rows=rows,
        totals=dict(zip(service.FIGURES, view.totals(), strict=True)),
        generated_at=report.generated_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Generate the end-of-March / end-of-October dropout report from the case events (a new version)",
)
async def generate(
    body: DropoutReportCreate,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("bulletin:publish"))],
) -> DropoutReportPublic:
    report = await service.generate(
        session=session, ctx=ctx, principal=principal, period=body.period, today=today_in_china()
    )
    return _public(ctx, report, principal)


@router.get("", summary="Generated dropout reports (rows within the caller's jurisdiction)")
async def list_reports(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    limit: Limit = 20,
    cursor: Cursor = None,
    period: Annotated[str | None, Query(pattern=r"^20\d{2}-(03|10)$")] = None,
) -> Page[DropoutReportPublic]:
    rows = await repository.page(session, period=period, after=decode_cursor(cursor, str), limit=limit)
    return page_of([_public(ctx, r, principal) for r in rows], limit, lambda r: r.id)


@router.get("/{report_id}", summary="One dropout report")
async def get_report(report_id: str, session: SessionDep, ctx: Ctx, principal: Reader) -> DropoutReportPublic:
    return _public(ctx, await service.get(session=session, report_id=report_id), principal)


@router.get("/{report_id}/xlsx", response_class=Response, summary="The report as an Excel workbook")
async def report_xlsx(report_id: str, session: SessionDep, ctx: Ctx, principal: Reader) -> Response:
    report = await service.get(session=session, report_id=report_id)
    view = service.view_of(ctx, report, scope=principal.scope)
    return Response(
        exports.to_xlsx(view),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="dropout-report-{report.period}.xlsx"'},
    )


@router.get("/{report_id}/pdf", response_class=Response, summary="The report as PDF with a chart")
async def report_pdf(report_id: str, session: SessionDep, ctx: Ctx, principal: Reader) -> Response:
    report = await service.get(session=session, report_id=report_id)
    view = service.view_of(ctx, report, scope=principal.scope)
    return Response(await asyncio.to_thread(exports.to_pdf, view), media_type="application/pdf")
