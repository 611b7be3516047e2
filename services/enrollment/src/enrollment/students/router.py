"""HTTP for student records: registration, reading, transitions, transfers, annotations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from baoxue.auth.principal import Principal
from baoxue.concurrency import IfMatch, etag, optional_if_match
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.idempotency import IdempotencyKey, Produced, idempotent, request_fingerprint
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from baoxue.pii.citizen_id import normalise_id_number
from enrollment.students import annotations as annotation_service
from enrollment.students import batch, repository, service, transfers, transitions
from enrollment.students.models import StudentTransfer
from enrollment.students.schemas import (
    AnnotationCreate,
    AnnotationPublic,
    BatchResult,
    Dropout,
    Resumption,
    StudentBatch,
    StudentCreate,
    StudentPublic,
    StudentStatus,
    SuspensionCreate,
    SuspensionExtension,
    TransferApproval,
    TransferCreate,
    TransferPublic,
    Transition,
)

router = APIRouter(tags=["student records (学籍)"])
Reader = Annotated[Principal, Depends(requires("student:read"))]
Writer = Annotated[Principal, Depends(requires("student:write"))]
_409: dict[int | str, dict[str, Any]] = {409: {"description": "active_record_exists / invalid_transition"}}


_412: dict[int | str, dict[str, Any]] = {
    412: {"description": "precondition_failed: the record changed since the ETag sent in If-Match"}
}


def _with_etag(response: Response, public: StudentPublic) -> StudentPublic:
    response.headers["ETag"] = etag(public.version)
    return public


@router.post(
    "/students",
    status_code=201,
    responses={
        **_409,
        422: {"description": "invalid_student_number / invalid_id_number / idempotency_key_reused"},
    },
    summary="Register a student record (学籍); send Idempotency-Key to make retries safe",
)
async def register(
    data: StudentCreate,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    # The fingerprint hashes blind indexes, never the identifiers themselves (an unkeyed hash of an ID
    # number is reversible by enumeration).
    payload = data.model_dump(mode="json")
    payload["id_number"] = ctx.blind_index.of(normalise_id_number(data.id_number))
    payload["student_number"] = ctx.blind_index.of(normalise_id_number(data.student_number))

    async def produce() -> Produced:
        record = await service.register_student(session=session, ctx=ctx, principal=principal, data=data)
        # Always masked here: this body may be stored for replays.
        body = service.to_public(ctx, principal, record, masked=True).model_dump(mode="json")
        return 201, body, {"Location": f"/v1/students/{record.id}"}

    return await idempotent(session, ctx, principal, idempotency_key, payload, produce)


@router.post(
    "/students/batch",
    responses={422: {"description": "idempotency_key_reused; a malformed body"}},
    summary="Register up to 5,000 student records; per-record outcomes (send Idempotency-Key)",
)
async def register_batch(
    data: StudentBatch,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """200 with one outcome per record, in order: ``created`` (the record's id) or ``refused`` (the
    problem code the single POST would have answered). A refused record never stops the others."""
    fingerprint = None
    if idempotency_key:
        payload = [
            {
                **r.model_dump(mode="json"),
                "id_number": ctx.blind_index.of(normalise_id_number(r.id_number)),
                "student_number": ctx.blind_index.of(normalise_id_number(r.student_number)),
            }
            for r in data.records
        ]
        fingerprint = request_fingerprint(payload)
        stored = await ctx.idempotency.lookup(session, principal, idempotency_key, fingerprint)
        if stored is not None:
            return JSONResponse(
                stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
            )
    outcomes = await batch.register_batch(session=session, ctx=ctx, principal=principal, records=data.records)
    created = sum(1 for o in outcomes if o.outcome == "created")
    body = BatchResult(created=created, refused=len(outcomes) - created, results=outcomes).model_dump(
        mode="json"
    )
    if idempotency_key and fingerprint:
        await ctx.idempotency.save(session, principal, idempotency_key, fingerprint, 200, body)
    return JSONResponse(body, status_code=200)


@router.get("/students", summary="Student records in the caller's jurisdiction (case-role scope)")
async def list_students(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    school_code: Annotated[str | None, Query(pattern=r"^\d{14}$")] = None,
    status: StudentStatus | None = None,
) -> Page[StudentPublic]:
    rows = await repository.list_visible(
        session,
        principal,
        limit=limit,
        after=decode_cursor(cursor, str),
        school_code=school_code,
        status=status,
    )
    await ctx.audit.record(session, principal, "read", "student_record", [r.id for r in rows[:limit]])
    return page_of([service.to_public(ctx, principal, r) for r in rows], limit, lambda p: p.id)


@router.get("/students/{student_id}", summary="One student record")
async def get_student(
    student_id: str, session: SessionDep, ctx: Ctx, principal: Reader, response: Response
) -> StudentPublic:
    public = await service.get_student(session=session, ctx=ctx, principal=principal, student_id=student_id)
    return _with_etag(response, public)


@router.post(
    "/students/{student_id}/suspension",
    responses={**_409, **_412},
    summary="休学: suspend (at most one year)",
)
async def suspend(
    student_id: str,
    data: SuspensionCreate,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    response: Response,
    if_match: IfMatch = None,
) -> StudentPublic:
    r = await transitions.suspend(
        session=session,
        ctx=ctx,
        principal=principal,
        student_id=student_id,
        expected_version=optional_if_match(if_match),
        starts_on=data.starts_on,
        until=data.until,
        reason=data.reason,
    )
    return _with_etag(response, service.to_public(ctx, principal, r))


@router.post(
    "/students/{student_id}/suspension/extension",
    responses={**_409, **_412},
    summary="Extend a suspension once",
)
async def extend(
    student_id: str,
    data: SuspensionExtension,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    response: Response,
    if_match: IfMatch = None,
) -> StudentPublic:
    r = await transitions.extend_suspension(
        session=session,
        ctx=ctx,
        principal=principal,
        student_id=student_id,
        until=data.until,
        expected_version=optional_if_match(if_match),
    )
    return _with_etag(response, service.to_public(ctx, principal, r))


@router.post("/students/{student_id}/resumption", responses={**_409, **_412}, summary="复学: enrolled again")
async def resume(
    student_id: str,
    data: Resumption,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    response: Response,
    if_match: IfMatch = None,
) -> StudentPublic:
    r = await transitions.resume(
        session=session,
        ctx=ctx,
        principal=principal,
        student_id=student_id,
        on=data.on,
        reason=data.reason,
        expected_version=optional_if_match(if_match),
    )
    return _with_etag(response, service.to_public(ctx, principal, r))


@router.post(
    "/students/{student_id}/dropout",
    responses={**_409, **_412},
    summary="辍学: record kept, suspected dropout raised",
)
async def drop_out(
    student_id: str,
    data: Dropout,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    response: Response,
    if_match: IfMatch = None,
) -> StudentPublic:
    r = await transitions.drop_out(
        session=session,
        ctx=ctx,
        principal=principal,
        student_id=student_id,
        on=data.on,
        reason=data.reason,
        expected_version=optional_if_match(if_match),
    )
    return _with_etag(response, service.to_public(ctx, principal, r))


@router.post("/students/{student_id}/graduation", responses={**_409, **_412}, summary="毕业")
async def graduate(
    student_id: str,
    data: Transition,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    response: Response,
    if_match: IfMatch = None,
) -> StudentPublic:
    r = await transitions.graduate(
        session=session,
        ctx=ctx,
        principal=principal,
        student_id=student_id,
        on=data.on,
        expected_version=optional_if_match(if_match),
    )
    return _with_etag(response, service.to_public(ctx, principal, r))


def transfer_public(t: StudentTransfer) -> TransferPublic:
    return TransferPublic(
        id=t.id,
        student_id=t.student_id,
        from_school=t.from_school,
        to_school=t.to_school,
        requested_on=t.requested_on,
        due_on=t.due_on,
        sending_approved=t.sending_approved_by is not None,
        receiving_approved=t.receiving_approved_by is not None,
        state=t.state,
        hanging_since=t.hanging_since,
        completed_on=t.completed_on,
        closed_reason=t.closed_reason,
        closed_on=t.closed_on,
        version=t.version,
    )


@router.post(
    "/students/{student_id}/transfers",
    status_code=201,
    responses={**_409, **_412},
    summary="Request a transfer",
)
async def request_transfer(
    student_id: str,
    data: TransferCreate,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    response: Response,
    if_match: IfMatch = None,
) -> TransferPublic:
    t = await transfers.request_transfer(
        session=session,
        ctx=ctx,
        principal=principal,
        student_id=student_id,
        to_school=data.to_school,
        requested_on=data.requested_on,
        expected_version=optional_if_match(if_match),
    )
    response.headers["ETag"] = etag(t.version)  # the transfer's own version (the record is unchanged)
    return transfer_public(t)


@router.post(
    "/transfers/{transfer_id}/approvals",
    responses={**_412},
    summary="The sending or receiving side approves",
)
async def approve_transfer(
    transfer_id: str,
    data: TransferApproval,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("transfer:approve"))],
    response: Response,
    if_match: IfMatch = None,
) -> TransferPublic:
    t = await transfers.approve_transfer(
        session=session,
        ctx=ctx,
        principal=principal,
        transfer_id=transfer_id,
        side=data.side,
        on=data.on,
        expected_version=optional_if_match(if_match),
    )
    response.headers["ETag"] = etag(t.version)
    return transfer_public(t)


@router.post(
    "/transfers/{transfer_id}/rejection", responses={**_412}, summary="Either side refuses the transfer"
)
async def reject_transfer(
    transfer_id: str,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("transfer:approve"))],
    response: Response,
    if_match: IfMatch = None,
) -> TransferPublic:
    t = await transfers.reject_transfer(
        session=session,
        ctx=ctx,
        principal=principal,
        transfer_id=transfer_id,
        expected_version=optional_if_match(if_match),
    )
    response.headers["ETag"] = etag(t.version)
    return transfer_public(t)


@router.post(
    "/students/{student_id}/annotations", status_code=201, summary="Annotate an incapacity assessment"
)
async def annotate(
    student_id: str,
    data: AnnotationCreate,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("annotation:write"))],
) -> AnnotationPublic:
    a = await annotation_service.annotate(
        session=session, ctx=ctx, principal=principal, student_id=student_id, data=data
    )
    return AnnotationPublic.model_validate(a, from_attributes=True)


@router.get("/students/{student_id}/annotations", summary="Incapacity annotations (bureau, dpf, own school)")
async def list_annotations(
    student_id: str,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("annotation:read"))],
) -> list[AnnotationPublic]:
    found = await annotation_service.list_annotations(
        session=session, ctx=ctx, principal=principal, student_id=student_id
    )
    return [AnnotationPublic.model_validate(a, from_attributes=True) for a in found]
