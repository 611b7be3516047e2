"""HTTP routes of home visits: create (idempotent), batch sync, read, conditional update, lists,
coverage and students still owed a visit, and the semester roster."""

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status
from fastapi.responses import JSONResponse

from baoxue.auth import Principal
from baoxue.concurrency import etag, parse_if_match
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.errors import NotFound
from baoxue.idempotency import IdempotencyKey, Produced, StoredAnswer, idempotent, request_fingerprint
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from casework.cases.service import settings_of
from casework.semesters import SEMESTER_PATTERN, bounds
from casework.visits import repository as repo
from casework.visits.batch import sync_visits
from casework.visits.models import Visit
from casework.visits.schemas import (
    BatchResult,
    CoverageRow,
    OwedStudent,
    RosterPut,
    RosterResult,
    VisitBatch,
    VisitCreate,
    VisitPublic,
    VisitUpdate,
)
from casework.visits.service import put_roster, record_visit, update_visit

router = APIRouter(tags=["visits"])
Reader = Annotated[Principal, Depends(requires("visit:read"))]
Writer = Annotated[Principal, Depends(requires("visit:write"))]
Semester = Annotated[str, Query(pattern=SEMESTER_PATTERN, examples=["2026-autumn"])]


def _public(visit: Visit) -> dict[str, Any]:
    return VisitPublic.model_validate(visit.model_dump()).model_dump(mode="json")


@router.post(
    "/visits",
    status_code=status.HTTP_201_CREATED,
    response_model=VisitPublic,
    summary="Record a home visit (client-generated id; send Idempotency-Key)",
    responses={
        200: {"description": "already stored (same id, same content)"},
        409: {"description": "visit_id_conflict"},
    },
)
async def create_visit(
    data: VisitCreate,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    # The key's look-up rides in record_visit's first statement (one round trip less than idempotent()).
    fingerprint = request_fingerprint(data.model_dump(mode="json"))
    key = ctx.idempotency.probe(principal, idempotency_key, fingerprint) if idempotency_key else None
    try:
        visit, created = await record_visit(session=session, ctx=ctx, principal=principal, data=data, key=key)
    except StoredAnswer as answered:
        return JSONResponse(
            answered.stored.body,
            status_code=answered.stored.status_code,
            headers={"Idempotent-Replayed": "true"},
        )
    status_code, body = (201 if created else 200), _public(visit)
    if idempotency_key:
        await ctx.idempotency.save(session, principal, idempotency_key, fingerprint, status_code, body)
    headers = {"ETag": etag(visit.version), "Location": f"/v1/visits/{visit.id}"}
    return JSONResponse(body, status_code=status_code, headers=headers)


@router.post("/visits/batch", response_model=BatchResult, summary="Sync a day's offline visits in one call")
async def batch_visits(
    data: VisitBatch, session: SessionDep, ctx: Ctx, principal: Writer, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    async def produce() -> Produced:
        result = await sync_visits(session=session, ctx=ctx, principal=principal, batch=data)
        return 200, result.model_dump(mode="json"), {}

    return await idempotent(session, ctx, principal, idempotency_key, data.model_dump(mode="json"), produce)


@router.get("/visits", summary="Visits in the caller's jurisdiction")
async def list_visits(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    semester: Annotated[str | None, Query(pattern=SEMESTER_PATTERN)] = None,
    school_code: str | None = None,
    student_id: str | None = None,
    flagged: bool | None = None,
) -> Page[VisitPublic]:
    rows = await repo.list_visits(
        session,
        principal,
        semester=semester,
        school_code=school_code,
        student_id=student_id,
        flagged=flagged,
        after=decode_cursor(cursor, (dt.date, str)),
        limit=limit,
    )
    page = page_of(rows, limit, lambda v: [v.visited_on.isoformat(), v.id])
    if page.items:
        await ctx.audit.record(session, principal, "read", "visit", [v.id for v in page.items])
    return Page[VisitPublic](
        items=[VisitPublic.model_validate(v.model_dump()) for v in page.items], next_cursor=page.next_cursor
    )


@router.get("/visits/coverage", summary="Visit coverage of a semester by school, class or teacher")
async def visit_coverage(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    semester: Semester,
    school_code: str | None = None,
    by: Annotated[str, Query(pattern="^(school|class|teacher)$")] = "school",
) -> list[CoverageRow]:
    bounds(semester, settings_of(ctx))
    rows = await repo.coverage(session, principal, semester=semester, school_code=school_code, by=by)
    return [CoverageRow.model_validate(r) for r in rows]


@router.get("/visits/owed", summary="Students still owed a visit (or special-group visits) this semester")
async def students_owed(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    semester: Semester,
    limit: Limit = 100,
    cursor: Cursor = None,
    school_code: str | None = None,
    class_code: str | None = None,
    teacher: str | None = None,
) -> Page[OwedStudent]:
    rows = await repo.owed(
        session,
        principal,
        semester=semester,
        school_code=school_code,
        class_code=class_code,
        teacher=teacher,
        after=decode_cursor(cursor, (str, str)),
        limit=limit,
    )
    page = page_of(rows, limit, lambda r: [r["school_code"], r["student_id"]])
    if page.items:
        # Students with their special-group categories (disabled, left-behind, ...): a read of personal data.
        ids = [r["student_id"] for r in page.items]
        await ctx.audit.record(
            session, principal, "read", "roster_student", ids, detail=f"semester={semester}"
        )
    return Page[OwedStudent](
        items=[OwedStudent.model_validate(r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get("/visits/{visit_id}", summary="One visit")
async def get_visit(
    visit_id: str, session: SessionDep, ctx: Ctx, principal: Reader, response: Response
) -> VisitPublic:
    visit = await repo.get_visit(session, visit_id.lower(), principal)
    if visit is None:
        raise NotFound("No such visit.")
    await ctx.audit.record(session, principal, "read", "visit", [visit.id])
    response.headers["ETag"] = etag(visit.version)
    return VisitPublic.model_validate(visit.model_dump())


@router.patch(
    "/visits/{visit_id}",
    summary="Correct a visit (If-Match required)",
    responses={412: {"description": "changed since read; names the conflicting fields"}},
)
async def patch_visit(
    visit_id: str,
    data: VisitUpdate,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> VisitPublic:
    visit = await update_visit(
        session=session,
        ctx=ctx,
        principal=principal,
        visit_id=visit_id.lower(),
        data=data,
        expected_version=parse_if_match(if_match),
    )
    response.headers["ETag"] = etag(visit.version)
    return VisitPublic.model_validate(visit.model_dump())


@router.put("/rosters/{school_code}/{semester}", summary="A school's students of a semester (for coverage)")
async def put_school_roster(
    data: RosterPut,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("roster:write"))],
    school_code: Annotated[str, Path(pattern=r"^\d{14}$")],
    semester: Annotated[str, Path(pattern=SEMESTER_PATTERN)],
) -> RosterResult:
    students, special = await put_roster(
        session=session, ctx=ctx, principal=principal, school_code=school_code, semester=semester, data=data
    )
    return RosterResult(school_code=school_code, semester=semester, students=students, special_group=special)
