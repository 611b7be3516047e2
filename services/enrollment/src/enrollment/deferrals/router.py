"""HTTP for deferral and exemption applications."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from baoxue.auth.principal import Principal
from baoxue.concurrency import IfMatch, etag, optional_if_match
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from enrollment.deferrals import service
from enrollment.deferrals.schemas import DeferralCreate, DeferralDecision, DeferralPublic

router = APIRouter(tags=["deferrals and exemptions (缓学/免学)"])


@router.post("/deferral-applications", status_code=201, summary="File a deferral or exemption application")
async def file(
    data: DeferralCreate,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("deferral:file"))],
    response: Response,
) -> DeferralPublic:
    app = await service.file_application(session=session, ctx=ctx, principal=principal, data=data)
    response.headers["ETag"] = etag(app.version)
    return service.to_public(app)


@router.post(
    "/deferral-applications/{application_id}/decision",
    responses={412: {"description": "precondition_failed: the application changed since the ETag sent"}},
    summary="The bureau decides",
)
async def decide(
    application_id: str,
    data: DeferralDecision,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("deferral:decide"))],
    response: Response,
    if_match: IfMatch = None,
) -> DeferralPublic:
    app = await service.decide(
        session=session,
        ctx=ctx,
        principal=principal,
        application_id=application_id,
        data=data,
        expected_version=optional_if_match(if_match),
    )
    response.headers["ETag"] = etag(app.version)
    return service.to_public(app, data.on)


@router.get("/deferral-applications", summary="Applications of the caller's area; in_force evaluated on `on`")
async def list_applications(
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("deferral:read"))],
    limit: Limit = 50,
    cursor: Cursor = None,
    child_id: str | None = None,
    on: Annotated[dt.date | None, Query()] = None,
) -> Page[DeferralPublic]:
    rows = await service.list_applications(
        session=session, principal=principal, limit=limit, after=decode_cursor(cursor, str), child_id=child_id
    )
    # reasons and evidence references are health information of minors: every read is audited
    await ctx.audit.record(session, principal, "read", "deferral_application", [r.id for r in rows[:limit]])
    return page_of([service.to_public(r, on) for r in rows], limit, lambda p: p.id)
