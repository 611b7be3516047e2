"""HTTP for the provincial platform synchronisation (long jobs)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, requires
from baoxue.jobs import JobProgress
from enrollment.provincial import adapter

router = APIRouter(tags=["provincial platform sync"])
Runner = Annotated[Principal, Depends(requires("sync:run"))]


async def _start(ctx: Any, principal: Principal, kind: str, response: Response) -> dict[str, str]:
    async with ctx.db.transaction() as session:
        job_id = await ctx.jobs.create(session, kind=kind, created_by=principal.subject, org=principal.org)
        await ctx.audit.record(session, principal, "run", "provincial_sync", [job_id], detail=kind)

    async def work(_progress: JobProgress) -> dict[str, Any]:
        run = adapter.import_records if kind == "provincial_import" else adapter.push_changes
        return {"counts": await run(ctx)}

    ctx.jobs.start(job_id, work)
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return {"job_id": job_id}


@router.post("/provincial-sync/imports", status_code=202, summary="Import student records from the platform")
async def start_import(ctx: Ctx, principal: Runner, response: Response) -> dict[str, str]:
    return await _start(ctx, principal, "provincial_import", response)


@router.post("/provincial-sync/pushes", status_code=202, summary="Push status changes and annotations")
async def start_push(ctx: Ctx, principal: Runner, response: Response) -> dict[str, str]:
    return await _start(ctx, principal, "provincial_push", response)
