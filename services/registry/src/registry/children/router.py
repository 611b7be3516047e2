"""HTTP of children: list, detail, look-up by ID number (POST body, never a URL)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.pagination import Cursor, Limit, Page, decode_cursor
from registry.children import service
from registry.children.schemas import ChildDetail, ChildSummary, LookupRequest
from registry.settings import RegistrySettings

router = APIRouter(tags=["children"])
Reader = Annotated[Principal, Depends(requires("child:read"))]


@router.get("/children", summary="Children in your jurisdiction (filters; cursor pagination; audited)")
async def list_children(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    limit: Limit = 100,
    cursor: Cursor = None,
    town: Annotated[str | None, Query(max_length=12, description="hukou town code")] = None,
    category: Annotated[
        str | None, Query(max_length=30, description="category code, e.g. registered_poor")
    ] = None,
    status: Annotated[
        str | None, Query(max_length=12, description="active (default: all but duplicate), deceased ...")
    ] = None,
    source: Annotated[
        str | None, Query(max_length=20, description="a department whose feeds mention the child")
    ] = None,
    age_min: Annotated[int | None, Query(ge=0, le=30)] = None,
    age_max: Annotated[int | None, Query(ge=0, le=30)] = None,
    age_on: Annotated[
        dt.date | None, Query(description="date the ages refer to (default: this year's cut-off)")
    ] = None,
) -> Page[ChildSummary]:
    settings: RegistrySettings = ctx.settings  # type: ignore[assignment]
    on = age_on or settings.cutoff_for(f"{dt.date.today().year}-09")
    return await service.list_children(
        session=session,
        ctx=ctx,
        principal=principal,
        town=town,
        category=category,
        status=status,
        source=source,
        age_min=age_min,
        age_max=age_max,
        on=on,
        cursor=decode_cursor(cursor, str),
        limit=limit,
    )


@router.get("/children/{child_id}", summary="One child with provenance, flags and history (audited)")
async def get_child(child_id: str, session: SessionDep, ctx: Ctx, principal: Reader) -> ChildDetail:
    return await service.child_detail(session=session, ctx=ctx, principal=principal, child_id=child_id)


@router.post("/children/lookup", summary="Find a child by ID number (in the body, never in a URL; audited)")
async def lookup(body: LookupRequest, session: SessionDep, ctx: Ctx, principal: Reader) -> ChildDetail:
    return await service.lookup(session=session, ctx=ctx, principal=principal, id_number=body.id_number)
