"""HTTP for placements and the home-teaching log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from enrollment.placements import service
from enrollment.placements.schemas import PlacementCreate, PlacementPublic, SessionCreate, TermLog

router = APIRouter(tags=["placements of disabled children"])
Writer = Annotated[Principal, Depends(requires("placement:write"))]


@router.post("/placements", status_code=201, summary="Place a disabled child (mode, school, plan, 学籍)")
async def place(data: PlacementCreate, session: SessionDep, ctx: Ctx, principal: Writer) -> PlacementPublic:
    p = await service.place(session=session, ctx=ctx, principal=principal, data=data)
    return PlacementPublic.model_validate(p, from_attributes=True)


@router.post(
    "/placements/{placement_id}/sessions", status_code=201, summary="Log a delivered 送教上门 session"
)
async def log_session(
    placement_id: str, data: SessionCreate, session: SessionDep, ctx: Ctx, principal: Writer
) -> dict[str, str]:
    await service.log_session(
        session=session, ctx=ctx, principal=principal, placement_id=placement_id, data=data
    )
    return {"status": "logged"}


@router.get("/placements/{placement_id}/terms", summary="Planned vs delivered sessions per term")
async def terms(
    placement_id: str,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("placement:read"))],
) -> list[TermLog]:
    return await service.term_log(session=session, ctx=ctx, principal=principal, placement_id=placement_id)
