"""Administration of the children read model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from enrollment.children import service

router = APIRouter(tags=["children read model"])


@router.post(
    "/admin/children-read-model/rebuild",
    status_code=202,
    summary="Empty the children read model and replay the registry's stream into it",
)
async def rebuild(
    session: SessionDep,
    ctx: Ctx,
    background: BackgroundTasks,
    principal: Annotated[Principal, Depends(requires("readmodel:rebuild"))],
) -> dict[str, int]:
    counts = await service.rebuild_read_model(session=session, ctx=ctx)
    await ctx.audit.record(
        session, principal, "rebuild", "children_read_model", [], detail="replay requested"
    )
    background.add_task(service.replay, ctx)
    return counts
