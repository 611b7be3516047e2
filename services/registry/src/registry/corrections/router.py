"""HTTP of hukou corrections (police)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from registry.corrections import service
from registry.corrections.schemas import CorrectionCreate, CorrectionPublic

router = APIRouter(tags=["hukou corrections"])
Police = Annotated[Principal, Depends(requires("hukou:correct"))]


@router.post(
    "/children/{child_id}/hukou-corrections",
    status_code=201,
    summary="Record a hukou correction: deceased, moved out, duplicate registration, missing",
    description="The status changes a correction may make (registry statuses `active`, `missing`, "
    "`deceased`, `moved_out`, `duplicate`):\n\n"
    "| from | to |\n|---|---|\n"
    "| `active` | `deceased`, `moved_out`, `duplicate`, `missing` |\n"
    "| `missing` | `deceased`, `moved_out`, `duplicate` |\n"
    "| `deceased`, `moved_out` | none: final, 409 `correction_status_final` |\n"
    "| `duplicate` | none: merged into another record, 409 `child_already_merged` |\n\n"
    "The same status again is 409 `correction_no_change`. A correction that was wrong is undone "
    "(`POST /v1/hukou-corrections/{id}/undo`: the previous status comes back), so a missing child found "
    "is the undo of its `missing` correction. `effective_date` is a past day or today (China time), not "
    "before the child's birth date: otherwise 422 `correction_date_in_future` or "
    "`correction_date_before_birth`. A refused correction changes nothing and publishes nothing.",
)
async def create(
    child_id: str, body: CorrectionCreate, session: SessionDep, ctx: Ctx, principal: Police
) -> CorrectionPublic:
    row = await service.correct_hukou(
        session=session,
        ctx=ctx,
        principal=principal,
        child_id=child_id,
        kind=body.kind,
        effective_date=body.effective_date,
        duplicate_of=body.duplicate_of,
    )
    return CorrectionPublic.model_validate(row)


@router.post(
    "/hukou-corrections/{correction_id}/undo",
    summary="Undo a hukou correction (status restored, republished)",
    description="A duplicate registration's merge is undone as `POST /v1/merges/{id}/undo` undoes it: the rows "
    "fed since with the duplicate's ID number, their provenance, contact values, flags and the review items "
    "they opened go back to it, also from a record the survivor was merged into since (see that endpoint's "
    "description for what is not given back).",
)
async def undo(correction_id: str, session: SessionDep, ctx: Ctx, principal: Police) -> CorrectionPublic:
    row = await service.undo_correction(
        session=session, ctx=ctx, principal=principal, correction_id=correction_id
    )
    return CorrectionPublic.model_validate(row)
