"""HTTP routes of cases: open, list and ledgers, read, edit, transitions, signals."""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from baoxue.auth import Principal
from baoxue.concurrency import etag, parse_if_match
from baoxue.deps import Ctx, SessionDep, get_ctx, requires
from baoxue.errors import Conflict, NotFound, problem_response
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from casework.cases import repository as repo
from casework.cases.schemas import CaseCreate, CasePublic, CaseStateCode, CaseUpdate, TransitionRequest
from casework.cases.service import open_case_by_hand, update_case
from casework.cases.states import CONFIRMED_STATES, transitions_text
from casework.cases.transitions import transition_case
from casework.cases.views import audited, case_public, case_public_of
from casework.semesters import today

router = APIRouter(prefix="/cases", tags=["cases"])
Reader = Annotated[Principal, Depends(requires("case:read"))]
Writer = Annotated[Principal, Depends(requires("case:write"))]


def _after(cursor: str | None) -> tuple[dt.date, str] | None:
    """The (date, id) key of the case lists (opened_on or report_due, then id)."""
    after: tuple[dt.date, str] | None = decode_cursor(cursor, (dt.date, str))
    return after


async def _page(session, ctx, principal, *, states, confirmed_only, school_code, cursor, limit):  # type: ignore[no-untyped-def]
    rows = await repo.list_cases(
        session,
        principal,
        states=states,
        confirmed_only=confirmed_only,
        school_code=school_code,
        after=_after(cursor),
        limit=limit,
    )
    page = page_of(rows, limit, lambda c: [c.opened_on.isoformat(), c.id])
    return Page[CasePublic](
        items=await audited(session, ctx, principal, page.items), next_cursor=page.next_cursor
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CasePublic,
    summary="A school opens a case by hand",
    description="For the school's own student (the student records casework holds place the child at "
    "it), or for a child no school has enrolled whose hukou is in the school's town. A school district "
    "names one of its schools. Enrollment's later signal for the child moves the case to the school it "
    "names. If the child has an open case the caller may see, 409 case_already_open names it; a case "
    "the caller may not see is never named: it becomes the caller's when the caller is the child's "
    "school (by the student records) or, for a case without a school, of the child's hukou town (409 "
    "naming it), else the report is recorded on it for those who handle it (202 recorded).",
    responses={
        202: {
            "description": "recorded: the child's case is handled by another school or area; the report "
            "is on it. No case is named.",
            "content": {"application/json": {"example": {"status": "recorded"}}},
        },
        403: {"description": "student_of_another_school, child_outside_school_area, outside_jurisdiction"},
        409: {"description": "case_already_open (case_id: the child's open case), detected_before_closure"},
    },
)
async def create_case(
    data: CaseCreate,
    session: SessionDep,
    ctx: Ctx,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(requires("case:open"))],
) -> CasePublic | JSONResponse:
    result = await open_case_by_hand(session=session, ctx=ctx, principal=principal, data=data)
    case = result.case
    # The two answers below are returned, not raised: what the request wrote (the school's report on the
    # case, the case moved to the caller's school) is committed with them.
    if result.outcome == "already_open":
        problem = Conflict("The child already has an open case.", code="case_already_open", case_id=case.id)
        return problem_response(request, problem)
    if result.outcome == "recorded":
        return JSONResponse({"status": "recorded"}, status_code=status.HTTP_202_ACCEPTED)
    response.headers["ETag"] = etag(case.version)
    response.headers["Location"] = f"/v1/cases/{case.id}"
    return case_public(ctx, case)


@router.get("", summary="Cases in the caller's jurisdiction")
async def list_cases(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    state: Annotated[list[CaseStateCode] | None, Query()] = None,
    school_code: str | None = None,
) -> Page[CasePublic]:
    return await _page(
        session,
        ctx,
        principal,
        states=state,
        confirmed_only=False,
        school_code=school_code,
        cursor=cursor,
        limit=limit,
    )


@router.get("/ledgers/suspected", summary="Ledger of suspected dropouts (疑似辍学台账)")
async def suspected_ledger(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    school_code: str | None = None,
) -> Page[CasePublic]:
    return await _page(
        session,
        ctx,
        principal,
        states=["suspected"],
        confirmed_only=False,
        school_code=school_code,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/ledgers/confirmed", summary="Ledger of confirmed dropouts (确认辍学台账), open ones unless all=true"
)
async def confirmed_ledger(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    school_code: str | None = None,
    all: bool = False,
) -> Page[CasePublic]:
    states = None if all else list(CONFIRMED_STATES)
    return await _page(
        session,
        ctx,
        principal,
        states=states,
        confirmed_only=True,
        school_code=school_code,
        cursor=cursor,
        limit=limit,
    )


@router.get("/reports/overdue", summary="Confirmed cases whose dropout report is overdue")
async def overdue_reports(
    session: SessionDep, ctx: Ctx, principal: Reader, limit: Limit = 50, cursor: Cursor = None
) -> Page[CasePublic]:
    rows = await repo.list_overdue(session, principal, today=today(), after=_after(cursor), limit=limit)
    page = page_of(rows, limit, lambda c: [c.report_due.isoformat(), c.id])
    return Page[CasePublic](
        items=await audited(session, ctx, principal, page.items), next_cursor=page.next_cursor
    )


@router.get("/{case_id}", summary="One case")
async def get_case(case_id: str, request: Request, principal: Reader, response: Response) -> CasePublic:
    # The hottest read, with the fewest dependencies to solve: no request session (SessionDep) and the
    # context from the request (no Ctx dependency). On PostgreSQL the read and its audit entry are one
    # statement on an autocommit connection (one round trip, committed before the response); elsewhere
    # a transaction of its own, committed before the response as the request session's would be.
    ctx = get_ctx(request)
    if ctx.db.dialect == "postgresql":
        row = await repo.read_case_audited(ctx.db, ctx.audit, case_id, principal)
        if row is None:
            raise NotFound("No such case.")
        response.headers["ETag"] = etag(row["version"])
        return case_public_of(ctx, row)
    async with ctx.db.transaction() as session:
        case = await repo.get_case(session, case_id, principal)
        if case is None:
            raise NotFound("No such case.")
        public = (await audited(session, ctx, principal, [case]))[0]
    response.headers["ETag"] = etag(case.version)
    return public


@router.patch(
    "/{case_id}",
    summary="Edit reason, analysis, responsible person, measures (If-Match required)",
    description="A field left out is unchanged; an explicit null clears it. A confirmed dropout keeps a "
    "reason category and one responsible person (一人一案): once the case is confirmed (confirmed, "
    "persuading, returned, placed, escalated), emptying `reason` or `responsible_person` is refused with "
    "422 `validation_failed` whose `errors` name the field (`null_not_allowed`); `planned_measures` "
    "cannot be null in any state. A closed case cannot be edited (409 `case_closed`).",
    responses={
        409: {"description": "case_closed, or case_not_placed for a placement mode"},
        412: {"description": "changed since read; names the conflicting fields"},
        422: {"description": "validation_failed: errors name each field that cannot be emptied"},
    },
)
async def patch_case(
    case_id: str,
    data: CaseUpdate,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> CasePublic:
    case = await update_case(
        session=session,
        principal=principal,
        case_id=case_id,
        data=data,
        expected_version=parse_if_match(if_match),
    )
    response.headers["ETag"] = etag(case.version)
    return case_public(ctx, case)


IF_MATCH_TRANSITION = (
    "Optional but honoured: the case's ETag as read (GET /v1/cases/{id}, or the previous transition's "
    "answer). If the case changed since, the move is refused with 412 naming the fields changed since "
    "that version and the case's current state; without it the move applies to the case as it is now."
)


def optional_if_match(header: str | None) -> int | None:
    """The version of an optional ``If-Match``: None when absent or ``*`` (any current case)."""
    if header is None or header.strip() == "*":
        return None
    return parse_if_match(header)


TRANSITIONS_DESCRIPTION = (
    "Confirm, start persuasion, return, place, escalate or close a case. The allowed moves: "
    + transitions_text()
    + ". Besides the issue's path (suspected → confirmed → persuading → returned | placed | escalated → "
    "closed) two moves back to persuasion are deliberate: **returned → persuading** when a child who "
    "returned stops attending again before the case is closed (the case is still open, so a new dropout "
    "signal would only attach to it: the school takes it back to persuasion, which publishes CaseRelapsed "
    "so that notify no longer counts the child as returned and starts the new episode's ladder; a later "
    "return is recorded again), and **escalated → persuading** when the school takes an escalated case "
    "back (notify's ladder stops as withdrawn). A closed case is not moved: only a new dropout signal inside its "
    "relapse watch reopens it (→ suspected). Each target needs its own fields (confirmed: reason and "
    "responsible_person unless the case has them; placed: placement_mode; escalated: evidence; closed: "
    "closure_reason and its proof). "
)


@router.post(
    "/{case_id}/transitions",
    summary="Move a case to another state (If-Match optional, honoured)",
    description=TRANSITIONS_DESCRIPTION + IF_MATCH_TRANSITION + " The answer carries the case's new ETag.",
    responses={
        409: {
            "description": "transition_not_allowed (names from_state, to_state and the allowed targets), "
            "or a closure without its proof: closure_reason_not_allowed, no_active_student_record, "
            "attendance_not_confirmed, placement_not_recorded, not_excluded"
        },
        412: {
            "description": "the If-Match is stale: names conflicting_fields, current_state and current_etag"
        },
        422: {
            "description": "transition_field_required (errors name the missing field), "
            "transition_date_too_early (`on` before the case's latest transition: names `earliest`), "
            "transition_date_in_future (`on` after today: names `latest`), or "
            "validation_failed (an unknown target state: errors list the allowed ones)"
        },
    },
)
async def post_transition(
    case_id: str,
    data: TransitionRequest,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    response: Response,
    if_match: Annotated[str | None, Header(description=IF_MATCH_TRANSITION)] = None,
) -> CasePublic:
    case = await transition_case(
        session=session,
        ctx=ctx,
        principal=principal,
        case_id=case_id,
        request=data,
        expected_version=optional_if_match(if_match),
    )
    response.headers["ETag"] = etag(case.version)
    return case_public(ctx, case)


@router.get("/{case_id}/signals", summary="The dropout signals of a case")
async def case_signals(case_id: str, session: SessionDep, principal: Reader) -> list[dict[str, object]]:
    if await repo.get_case(session, case_id, principal) is None:
        raise NotFound("No such case.")
    return [
        {"signal_id": s.signal_id, "signal": s.signal, "detected_on": s.detected_on, "effect": s.effect}
        for s in await repo.list_signals(session, case_id)
    ]
