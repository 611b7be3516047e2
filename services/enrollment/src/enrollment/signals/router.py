"""HTTP for dropout signals from schools: absence reports and vocational leavers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from enrollment.signals import absence, vocational
from enrollment.signals.models import VocationalLeaver
from enrollment.signals.schemas import (
    AbsenceReport,
    AbsenceReportResult,
    VocationalLeaverCreate,
    VocationalLeaverPublic,
    VocationalOutcome,
)

router = APIRouter(tags=["dropout signals"])
Reporter = Annotated[Principal, Depends(requires("signal:report"))]


def _leaver(v: VocationalLeaver) -> VocationalLeaverPublic:
    return VocationalLeaverPublic.model_validate(v, from_attributes=True)


@router.post(
    "/absence-reports", summary="A school's batch of unexcused absences (four weeks → suspected dropout)"
)
async def report_absence(
    data: AbsenceReport, session: SessionDep, ctx: Ctx, principal: Reporter
) -> AbsenceReportResult:
    return await absence.submit_report(session=session, ctx=ctx, principal=principal, report=data)


@router.post(
    "/students/{student_id}/vocational-leaver",
    status_code=201,
    summary="Junior-3 leaver to vocational school",
)
async def register_leaver(
    student_id: str, data: VocationalLeaverCreate, session: SessionDep, ctx: Ctx, principal: Reporter
) -> VocationalLeaverPublic:
    v = await vocational.register_leaver(
        session=session,
        ctx=ctx,
        principal=principal,
        student_id=student_id,
        vocational_school=data.vocational_school,
        left_on=data.left_on,
    )
    return _leaver(v)


@router.post(
    "/vocational-leavers/{leaver_id}/confirmation", summary="The vocational school confirms the record"
)
async def confirm(
    leaver_id: str, data: VocationalOutcome, session: SessionDep, ctx: Ctx, principal: Reporter
) -> VocationalLeaverPublic:
    return _leaver(
        await vocational.confirm(
            session=session, ctx=ctx, principal=principal, leaver_id=leaver_id, on=data.on
        )
    )


@router.post("/vocational-leavers/{leaver_id}/loss", summary="The vocational school reports the student lost")
async def lost(
    leaver_id: str, data: VocationalOutcome, session: SessionDep, ctx: Ctx, principal: Reporter
) -> VocationalLeaverPublic:
    return _leaver(
        await vocational.report_lost(
            session=session, ctx=ctx, principal=principal, leaver_id=leaver_id, on=data.on
        )
    )
