"""HTTP routes of the work on a case: persuasion log, dropout report, attendance, care plan."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import JSONResponse

from baoxue.auth import Principal
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.errors import NotFound
from baoxue.idempotency import IdempotencyKey, Produced, idempotent
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from casework.cases import repository as repo
from casework.cases.followup import confirm_attendance, log_persuasion, put_care_plan, visible_case
from casework.cases.reports import file_report
from casework.cases.schemas import (
    AttendanceCreate,
    AttendancePublic,
    CarePlanPublic,
    CarePlanPut,
    PersuasionCreate,
    PersuasionPublic,
    ReportCreate,
    ReportPublic,
)
from casework.cases.service import settings_of

router = APIRouter(prefix="/cases/{case_id}", tags=["cases"])
Reader = Annotated[Principal, Depends(requires("case:read"))]
Writer = Annotated[Principal, Depends(requires("case:write"))]
Persuader = Annotated[Principal, Depends(requires("case:persuade"))]


@router.post(
    "/persuasions",
    status_code=status.HTTP_201_CREATED,
    response_model=PersuasionPublic,
    summary="Log a persuasion attempt (send Idempotency-Key when retrying from the app)",
)
async def add_persuasion(
    case_id: str,
    data: PersuasionCreate,
    session: SessionDep,
    ctx: Ctx,
    principal: Persuader,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def produce() -> Produced:
        attempt = await log_persuasion(session=session, principal=principal, case_id=case_id, data=data)
        return 201, PersuasionPublic.model_validate(attempt.model_dump()).model_dump(mode="json"), {}

    payload = {"case_id": case_id, **data.model_dump(mode="json")}
    return await idempotent(session, ctx, principal, idempotency_key, payload, produce)


@router.get("/persuasions", summary="The persuasion log of a case")
async def list_persuasions(
    case_id: str, session: SessionDep, ctx: Ctx, principal: Reader, limit: Limit = 50, cursor: Cursor = None
) -> Page[PersuasionPublic]:
    await visible_case(session, principal, case_id)
    rows = await repo.list_persuasions(session, case_id, after=decode_cursor(cursor, int), limit=limit)
    page = page_of(rows, limit, lambda a: a.id)
    await ctx.audit.record(session, principal, "read", "persuasion", [case_id])
    return Page[PersuasionPublic](
        items=[PersuasionPublic.model_validate(a.model_dump()) for a in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/report", status_code=status.HTTP_201_CREATED, summary="File the dropout report to town and bureau"
)
async def post_report(
    case_id: str, data: ReportCreate, session: SessionDep, ctx: Ctx, principal: Writer
) -> ReportPublic:
    report = await file_report(session=session, ctx=ctx, principal=principal, case_id=case_id, data=data)
    return ReportPublic.model_validate(report.model_dump())


@router.get("/report", summary="The dropout report of a case (of its current episode unless one is named)")
async def get_report(
    case_id: str,
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    episode: Annotated[
        int | None,
        Query(ge=0, description="An earlier episode's report (the case's reopen count when it was filed)"),
    ] = None,
) -> ReportPublic:
    case = await visible_case(session, principal, case_id)
    report = await repo.get_report(session, case_id, case.reopen_count if episode is None else episode)
    if report is None:
        raise NotFound("The case has no report of this episode yet.")
    await ctx.audit.record(session, principal, "read", "case_report", [case_id])
    return ReportPublic.model_validate(report.model_dump())


@router.post(
    "/attendance",
    status_code=status.HTTP_201_CREATED,
    summary="Confirm attendance of a returned child, or of a suspected dropout found in school",
    description="Closing a case as returned needs the configured days of attendance since the return; "
    "closing a suspected case as unfounded needs them since the case was opened (enrollment's absence "
    "signal leaves the record enrolled, so an active record alone proves nothing). A period may not start "
    "before then (409 attendance_before_return / attendance_before_opening), overlap one confirmed since "
    "then (409 attendance_overlaps) or end after today (422 attendance_in_future); other states: 409 "
    "case_not_returned.",
)
async def post_attendance(
    case_id: str, data: AttendanceCreate, session: SessionDep, ctx: Ctx, principal: Writer
) -> AttendancePublic:
    row, total = await confirm_attendance(session=session, principal=principal, case_id=case_id, data=data)
    return AttendancePublic(
        from_date=row.from_date,
        to_date=row.to_date,
        days_attended=row.days_attended,
        total_days=total,
        required_days=settings_of(ctx).attendance_days_for_closure,
    )


@router.put("/care-plan", summary="Create or replace the follow-up care plan of a returned student")
async def put_plan(
    case_id: str, data: CarePlanPut, session: SessionDep, principal: Persuader
) -> CarePlanPublic:
    plan = await put_care_plan(session=session, principal=principal, case_id=case_id, data=data)
    return CarePlanPublic.model_validate(plan.model_dump())


@router.get("/care-plan", summary="The follow-up care plan of a returned student")
async def get_plan(case_id: str, session: SessionDep, ctx: Ctx, principal: Reader) -> CarePlanPublic:
    await visible_case(session, principal, case_id)
    plan = await repo.get_care_plan(session, case_id)
    if plan is None:
        raise NotFound("The case has no care plan.")
    await ctx.audit.record(session, principal, "read", "care_plan", [case_id])
    return CarePlanPublic.model_validate(plan.model_dump())
