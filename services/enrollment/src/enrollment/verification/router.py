"""HTTP for verification campaigns and tasks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from baoxue.auth.principal import Principal
from baoxue.concurrency import IfMatch, etag, optional_if_match
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from enrollment.verification import export, service, tasks
from enrollment.verification.models import Campaign, VerificationTask
from enrollment.verification.schemas import (
    CampaignCreate,
    CampaignPublic,
    ProgressRow,
    TaskConfirmation,
    TaskPublic,
    TaskResolution,
)

router = APIRouter(tags=["verification (入学核查)"])
Manager = Annotated[Principal, Depends(requires("campaign:manage"))]
Reader = Annotated[Principal, Depends(requires("campaign:read"))]


def _public(c: Campaign) -> CampaignPublic:
    return CampaignPublic.model_validate(c, from_attributes=True)


def _task(t: VerificationTask) -> TaskPublic:
    return TaskPublic.model_validate(t, from_attributes=True)


@router.post("/campaigns", status_code=201, summary="Open a verification campaign")
async def create(data: CampaignCreate, session: SessionDep, ctx: Ctx, principal: Manager) -> CampaignPublic:
    return _public(await service.create_campaign(session=session, ctx=ctx, principal=principal, data=data))


@router.get("/campaigns/{campaign_id}", summary="A campaign")
async def get(campaign_id: str, session: SessionDep, principal: Reader) -> CampaignPublic:
    return _public(await service.get_campaign(session, campaign_id))


@router.post(
    "/campaigns/{campaign_id}/runs",
    status_code=202,
    summary="Run the classification (a job)",
    responses={409: {"description": "campaign_running"}},
)
async def run(campaign_id: str, ctx: Ctx, principal: Manager, response: Response) -> dict[str, str]:
    job_id = await service.start_run(ctx=ctx, principal=principal, campaign_id=campaign_id)
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return {"job_id": job_id}


@router.get("/campaigns/{campaign_id}/progress", summary="Progress per town and school district")
async def progress(campaign_id: str, session: SessionDep, principal: Reader) -> list[ProgressRow]:
    return await service.progress_of(session=session, principal=principal, campaign_id=campaign_id)


_RESULT_404: dict[int | str, dict[str, Any]] = {
    404: {"description": "campaign_not_found, campaign_not_frozen, or result_version_not_found (?version=N)"}
}
Version = Annotated[
    int | None, Query(ge=1, description="a frozen result version (default: the latest); every one is kept")
]


@router.post("/campaigns/{campaign_id}/result", summary="Freeze the figures as a new result version")
async def freeze(campaign_id: str, session: SessionDep, ctx: Ctx, principal: Manager) -> dict[str, Any]:
    _campaign, result = await service.freeze(
        session=session, ctx=ctx, principal=principal, campaign_id=campaign_id
    )
    return result


@router.get(
    "/campaigns/{campaign_id}/result",
    summary="A frozen result: the latest, or ?version=N",
    responses=_RESULT_404,
)
async def result(
    campaign_id: str, session: SessionDep, principal: Reader, version: Version = None
) -> dict[str, Any]:
    return await service.frozen_result(session, await service.get_campaign(session, campaign_id), version)


async def _export(
    campaign_id: str, session: SessionDep, ctx: Ctx, principal: Principal, format: str, version: int | None
) -> Response:
    campaign = await service.get_campaign(session, campaign_id)
    frozen = await service.frozen_result(session, campaign, version)
    header, lines = export.result_table(frozen, ctx.directory)
    name = f"campaign-{campaign.year}-{campaign.kind}-v{frozen['result_version']}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    await ctx.audit.record(session, principal, "export", "campaign", [campaign.id], detail=format)
    if format == "xlsx":
        return Response(export.to_xlsx("核查结果", header, lines), media_type=export.XLSX, headers=headers)
    return Response(export.to_csv(header, lines), media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/campaigns/{campaign_id}/result.csv",
    summary="A frozen result (the latest, or ?version=N) per town and school district, as CSV (UTF-8 with BOM)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **_RESULT_404},
)
async def result_csv(
    campaign_id: str, session: SessionDep, ctx: Ctx, principal: Reader, version: Version = None
) -> Response:
    return await _export(campaign_id, session, ctx, principal, "csv", version)


@router.get(
    "/campaigns/{campaign_id}/result.xlsx",
    summary="A frozen result (the latest, or ?version=N) per town and school district, as an Excel workbook",
    response_class=Response,
    responses={200: {"content": {export.XLSX: {}}}, **_RESULT_404},
)
async def result_xlsx(
    campaign_id: str, session: SessionDep, ctx: Ctx, principal: Reader, version: Version = None
) -> Response:
    return await _export(campaign_id, session, ctx, principal, "xlsx", version)


@router.get("/verification-tasks", summary="Tasks of the caller's area (hukou district or enrolling org)")
async def list_tasks(
    session: SessionDep,
    principal: Annotated[Principal, Depends(requires("task:read"))],
    limit: Limit = 50,
    cursor: Cursor = None,
    campaign_id: str | None = None,
    state: str | None = None,
) -> Page[TaskPublic]:
    rows = await tasks.list_tasks(
        session=session,
        principal=principal,
        campaign_id=campaign_id,
        state=state,
        limit=limit,
        after=decode_cursor(cursor, str),
    )
    return page_of([_task(t) for t in rows], limit, lambda t: t.id)


_412: dict[int | str, dict[str, Any]] = {
    412: {"description": "precondition_failed: the task changed since the version sent in If-Match"}
}


def _answered(task: VerificationTask, response: Response) -> TaskPublic:
    """A changed task, with its new version as the ETag for the next If-Match."""
    response.headers["ETag"] = etag(task.version)
    return _task(task)


@router.post(
    "/verification-tasks/{task_id}/resolution", summary="Record the outcome and evidence", responses=_412
)
async def resolve(
    task_id: str,
    data: TaskResolution,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("task:resolve"))],
    response: Response,
    if_match: IfMatch = None,
) -> TaskPublic:
    task = await tasks.resolve(
        session=session,
        ctx=ctx,
        principal=principal,
        task_id=task_id,
        data=data,
        expected_version=optional_if_match(if_match),
    )
    return _answered(task, response)


@router.post(
    "/verification-tasks/{task_id}/confirmation", summary="Confirm 'enrolled elsewhere'", responses=_412
)
async def confirm(
    task_id: str,
    data: TaskConfirmation,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("task:confirm"))],
    response: Response,
    if_match: IfMatch = None,
) -> TaskPublic:
    task = await tasks.confirm(
        session=session,
        ctx=ctx,
        principal=principal,
        task_id=task_id,
        data=data,
        expected_version=optional_if_match(if_match),
    )
    return _answered(task, response)
