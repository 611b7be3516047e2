"""HTTP routes of the special-needs census and the support plans."""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status

from baoxue.auth import Principal
from baoxue.concurrency import etag, parse_if_match
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.errors import NotFound
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from casework.census import repository as repo
from casework.census.schemas import (
    CensusCompletedPublic,
    CensusMark,
    CensusSummary,
    PlanCreate,
    PlanPublic,
    PlanUpdate,
)
from casework.census.service import census_summary, complete_census, create_plan, mark_students, update_plan
from casework.semesters import SEMESTER_PATTERN

router = APIRouter(tags=["census"])
SemesterPath = Annotated[str, Path(pattern=SEMESTER_PATTERN, examples=["2026-autumn"])]
SchoolPath = Annotated[str, Path(pattern=r"^\d{14}$")]
CensusWriter = Annotated[Principal, Depends(requires("census:write"))]
PlanWriter = Annotated[Principal, Depends(requires("plan:write"))]
PlanReader = Annotated[Principal, Depends(requires("plan:read"))]


@router.post("/census/{semester}/schools/{school_code}/students", summary="Mark special-needs students")
async def post_census_students(
    semester: SemesterPath,
    school_code: SchoolPath,
    data: CensusMark,
    session: SessionDep,
    ctx: Ctx,
    principal: CensusWriter,
) -> dict[str, int]:
    n = await mark_students(
        session=session, ctx=ctx, principal=principal, school_code=school_code, semester=semester, data=data
    )
    return {"marked": n}


@router.post(
    "/census/{semester}/schools/{school_code}/complete",
    status_code=status.HTTP_201_CREATED,
    summary="Complete the school's census of the semester (on the server's today; on time within the window)",
)
async def post_census_complete(
    semester: SemesterPath,
    school_code: SchoolPath,
    session: SessionDep,
    ctx: Ctx,
    principal: CensusWriter,
    completed_on: Annotated[
        dt.date | None,
        Query(
            description=(
                "Optional and only ever today: the census is completed on the day the server receives it "
                "(China's calendar). Any other day is refused with 422 census_date_not_today."
            )
        ),
    ] = None,
) -> CensusCompletedPublic:
    census = await complete_census(
        session=session,
        ctx=ctx,
        principal=principal,
        school_code=school_code,
        semester=semester,
        completed_on=completed_on,
    )
    return CensusCompletedPublic.model_validate(census.model_dump())


@router.get("/census/{semester}", summary="Completeness and lateness of the census per school")
async def get_census_summary(
    semester: SemesterPath,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("census:read"))],
) -> CensusSummary:
    return await census_summary(session=session, ctx=ctx, principal=principal, semester=semester)


@router.post(
    "/support-plans", status_code=status.HTTP_201_CREATED, summary="A support plan (一生一案 / 一家一案)"
)
async def post_plan(
    data: PlanCreate, session: SessionDep, principal: PlanWriter, response: Response
) -> PlanPublic:
    plan = await create_plan(session=session, principal=principal, data=data)
    response.headers["ETag"] = etag(plan.version)
    return PlanPublic.model_validate(plan.model_dump())


@router.get("/support-plans", summary="Support plans in the caller's jurisdiction, by review date")
async def list_support_plans(
    session: SessionDep,
    ctx: Ctx,
    principal: PlanReader,
    limit: Limit = 50,
    cursor: Cursor = None,
    kind: Annotated[str | None, Query(pattern="^(student|family)$")] = None,
    school_code: str | None = None,
    review_before: dt.date | None = None,
) -> Page[PlanPublic]:
    rows = await repo.list_plans(
        session,
        principal,
        kind=kind,
        school_code=school_code,
        review_before=review_before,
        after=decode_cursor(cursor, (dt.date, str)),
        limit=limit,
    )
    page = page_of(rows, limit, lambda p: [p.review_on.isoformat(), p.id])
    if page.items:
        await ctx.audit.record(session, principal, "read", "support_plan", [p.id for p in page.items])
    return Page[PlanPublic](
        items=[PlanPublic.model_validate(p.model_dump()) for p in page.items], next_cursor=page.next_cursor
    )


@router.get("/support-plans/{plan_id}", summary="One support plan")
async def get_plan(
    plan_id: str, session: SessionDep, ctx: Ctx, principal: PlanReader, response: Response
) -> PlanPublic:
    plan = await repo.get_plan(session, plan_id, principal)
    if plan is None:
        raise NotFound("No such plan.")
    await ctx.audit.record(session, principal, "read", "support_plan", [plan.id])
    response.headers["ETag"] = etag(plan.version)
    return PlanPublic.model_validate(plan.model_dump())


@router.patch("/support-plans/{plan_id}", summary="Edit a support plan (If-Match required)")
async def patch_plan(
    plan_id: str,
    data: PlanUpdate,
    session: SessionDep,
    principal: PlanWriter,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> PlanPublic:
    plan = await update_plan(
        session=session,
        principal=principal,
        plan_id=plan_id,
        data=data,
        expected_version=parse_if_match(if_match),
    )
    response.headers["ETag"] = etag(plan.version)
    return PlanPublic.model_validate(plan.model_dump())
