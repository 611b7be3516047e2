"""HTTP of feeds: submit (streamed body or file upload), batches, error reports, templates, calendar."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, CurrentPrincipal, SessionDep, requires
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from registry.feeds import repository, service
from registry.feeds.columns import HEADERS
from registry.feeds.report import REPORT_HEADER, XLSX, template_notes, to_csv, to_xlsx
from registry.feeds.schemas import CalendarEntry, FeedBatchIn, FeedBatchPublic
from registry.feeds.uploads import SavedUpload, format_of, save_multipart_file, save_stream, spool_dir
from registry.settings import RegistrySettings

router = APIRouter(tags=["feeds"])
Mode = Annotated[
    Literal["commit", "validate"], Query(description="validate = dry run: report only, nothing applied")
]
ClientBatchId = Annotated[
    str | None, Query(max_length=100, description="Your id of this batch (idempotency)")
]
ReportFormat = Annotated[Literal["csv", "xlsx"], Query()]
DeliveryComplete = Annotated[
    bool,
    Query(
        description="false: this batch is one part of the department's delivery for the period and more "
        "parts follow, so it lapses no category flag; true (the default: one batch is the whole delivery): "
        "it completes the delivery, and the flags no batch of the period asserted lapse"
    ),
]
FLAG_RULE = """A department may deliver a period in several batches. Category flags lapse only when the delivery
is complete: a batch sent with `delivery_complete=false` is one part of it and lapses nothing; the batch
that completes it (`delivery_complete=true`, the default, so a single batch is the whole delivery) lapses
every flag of the department that no batch of the period asserted (each part confirms the flags it asserts,
`last_confirmed`). Send the completing part last. A flag that a batch lapsed and a later batch of the same
period asserts again (a department sending two batches each declared complete, or a part arriving after
the completing one) is active again with its original `valid_from`, and its `flag_lapsed` review item is
closed (`undone`, evidence `flag.effect = flag_reconfirmed` with the batch). A flag asserted again only in a
later period starts anew (`valid_from` that period)."""

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string"},
                "example": '{"姓名":"张三","身份证号":"370406201605020659","性别":"男","出生日期":"2016-05-02","户籍地址":"山亭区店子镇前庄村12号","类别":"常住"}\n',
            },
            "application/json": {
                "schema": FeedBatchIn.model_json_schema()
                | {
                    "description": 'An object with a "rows" array, read a row at a time (never whole in memory).'
                }
            },
            "text/csv": {"schema": {"type": "string"}, "example": ",".join(HEADERS) + "\n"},
            XLSX: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _spool(ctx: Any) -> Path:
    return spool_dir(ctx.settings)


def _accepted(batch: dict[str, Any], in_progress: bool) -> JSONResponse:
    """202 with the job's location while the batch is being applied (new, or a repeat of one not final
    yet); 200 for a repeat of a final batch."""
    body = FeedBatchPublic.model_validate(batch).model_dump(mode="json")
    if not in_progress:
        return JSONResponse(body, status_code=200)
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/jobs/{batch['job_id']}"})


@router.post(
    "/feeds/{department}/{period}/batches",
    summary="Submit a department's batch for a period (streamed body: NDJSON, JSON, CSV or .xlsx)",
    status_code=202,
    response_model=FeedBatchPublic,
    description=FLAG_RULE,
    responses={
        200: {"description": "a repeat of an earlier, final batch: that batch, nothing applied again"},
        202: {
            "description": "accepted: a new batch, or a repeat of one not final yet (duplicate: true), "
            "which is being applied once"
        },
    },
    openapi_extra=_BODY_DOC,
)
async def submit_batch(
    department: str,
    period: str,
    request: Request,
    ctx: Ctx,
    mode: Mode = "commit",
    client_batch_id: ClientBatchId = None,
    delivery_complete: DeliveryComplete = True,
    principal: Principal = Depends(requires("feed:submit")),
) -> JSONResponse:
    service.ensure_may_submit(principal, department)
    service.check_period(period)
    settings: RegistrySettings = ctx.settings  # type: ignore[assignment]
    upload = await save_stream(
        request.stream(),
        _spool(ctx),
        format_of(request.headers.get("content-type")),
        max_bytes=settings.feed_max_bytes,
        cipher=ctx.cipher,
    )
    batch, created = await service.submit_batch(
        ctx=ctx,
        principal=principal,
        department=department,
        period=period,
        mode=mode,
        client_batch_id=client_batch_id,
        upload=upload,
        delivery_complete=delivery_complete,
    )
    return _accepted(batch, created)


_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "CSV or .xlsx"}
                    },
                }
            }
        },
    }
}


@router.post(
    "/feeds/{department}/{period}/uploads",
    summary="Upload a department's spreadsheet (CSV UTF-8/GBK or .xlsx) for a period",
    status_code=202,
    response_model=FeedBatchPublic,
    description=FLAG_RULE,
    openapi_extra=_UPLOAD_DOC,
)
async def upload_file(
    department: str,
    period: str,
    request: Request,
    ctx: Ctx,
    mode: Mode = "commit",
    client_batch_id: ClientBatchId = None,
    delivery_complete: DeliveryComplete = True,
    principal: Principal = Depends(requires("feed:submit")),
) -> JSONResponse:
    """The form is read here, as it streams, not by the framework: the file part is sealed into the
    spool as it arrives, never put in a plain temporary file (``uploads.save_multipart_file``)."""
    service.ensure_may_submit(principal, department)
    service.check_period(period)
    settings: RegistrySettings = ctx.settings  # type: ignore[assignment]
    upload: SavedUpload = await save_multipart_file(
        request.stream(),
        request.headers.get("content-type"),
        _spool(ctx),
        field="file",
        max_bytes=settings.feed_max_bytes,
        cipher=ctx.cipher,
    )
    batch, created = await service.submit_batch(
        ctx=ctx,
        principal=principal,
        department=department,
        period=period,
        mode=mode,
        client_batch_id=client_batch_id,
        upload=upload,
        delivery_complete=delivery_complete,
    )
    return _accepted(batch, created)


@router.get("/feeds/batches", summary="Feed batches (own department's; all for bureau and inspectors)")
async def list_batches(
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    period: str | None = Query(None, max_length=7),
    principal: Principal = Depends(requires("feed:read")),
) -> Page[FeedBatchPublic]:
    rows = await repository.list_batches(
        session,
        departments=service.own_departments(principal),
        period=period,
        after=decode_cursor(cursor, (dt.datetime, str)),
        limit=limit,
    )
    items = [FeedBatchPublic.model_validate(r) for r in rows]
    return page_of(items, limit, lambda b: [b.submitted_at.isoformat(), b.id])


@router.get("/feeds/batches/{batch_id}", summary="One feed batch with its counts")
async def get_batch(
    batch_id: str, session: SessionDep, principal: Principal = Depends(requires("feed:read"))
) -> FeedBatchPublic:
    return FeedBatchPublic.model_validate(
        await service.visible_batch(session=session, principal=principal, batch_id=batch_id)
    )


@router.get(
    "/feeds/batches/{batch_id}/errors",
    summary="Row-level error report: original row, reason codes and messages (CSV or Excel)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, XLSX: {}}}},
)
async def error_report(
    batch_id: str,
    session: SessionDep,
    ctx: Ctx,
    format: ReportFormat = "csv",
    principal: Principal = Depends(requires("feed:read")),
) -> Response:
    lines = await service.error_report_lines(session=session, ctx=ctx, principal=principal, batch_id=batch_id)
    name = f"feed-{batch_id}-errors.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if format == "xlsx":
        return Response(to_xlsx([("errors", REPORT_HEADER, lines)]), media_type=XLSX, headers=headers)
    return Response(to_csv(REPORT_HEADER, lines), media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/feeds/templates/{department}",
    summary="The department's feed template (the Chinese headers; Excel adds a sheet of allowed values)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, XLSX: {}}}},
)
async def template(department: str, principal: CurrentPrincipal, format: ReportFormat = "xlsx") -> Response:
    service.check_department(department)
    headers = {"Content-Disposition": f'attachment; filename="feed-template-{department}.{format}"'}
    if format == "xlsx":
        body = to_xlsx(
            [("feed", list(HEADERS), []), ("说明", ["项目", "取值", "代码"], template_notes(department))]
        )
        return Response(body, media_type=XLSX, headers=headers)
    return Response(to_csv(list(HEADERS), []), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/feeds/calendar", summary="Feed calendar: per department and period, delivered or overdue")
async def calendar(
    session: SessionDep,
    year: int = Query(ge=2019, le=2100),
    principal: Principal = Depends(requires("calendar:read")),
) -> list[CalendarEntry]:
    return [CalendarEntry.model_validate(e) for e in await service.feed_calendar(session=session, year=year)]
