"""Document endpoints: issue, list, read (JSON / HTML / PDF), correct, acknowledge."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import JSONResponse

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, CurrentPrincipal, SessionDep, requires
from baoxue.errors import Conflict, Forbidden
from baoxue.idempotency import IdempotencyKey, request_fingerprint
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from baoxue.workdays import today_in_china
from notify.documents import render, repository, service
from notify.documents.models import Document
from notify.documents.render import RenderedDocument
from notify.documents.schemas import (
    AcknowledgementCreate,
    AcknowledgementPublic,
    DocumentCorrection,
    DocumentIssue,
    DocumentPublic,
)
from notify.documents.templates import ADDRESSEE, TEMPLATES
from notify.settings import NotifySettings

router = APIRouter(prefix="/documents", tags=["documents"])
Reader = Annotated[Principal, Depends(requires("document:read"))]
Issuer = Annotated[Principal, Depends(requires("document:issue"))]


def _public(doc: Document, rendered: RenderedDocument | None, addressee: str | None) -> DocumentPublic:
    return DocumentPublic(
        id=doc.id,
        kind=doc.kind,
        number=doc.number,
        version=doc.version,
        supersedes_id=doc.supersedes_id,
        issuing_org=doc.issuing_org,
        recipient_org=doc.recipient_org,
        case_id=doc.case_id,
        escalation_id=doc.escalation_id,
        title=doc.title,
        paragraphs=rendered.paragraphs
        if rendered
        else [p.replace(ADDRESSEE, "家长") for p in json.loads(doc.content)],
        addressee=addressee,
        content_sha256=doc.content_sha256,
        issued_on=doc.issued_on,
        issued_by=doc.issued_by,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a numbered document from a template (send Idempotency-Key when retrying)",
    response_model=DocumentPublic,
)
async def issue(
    body: DocumentIssue,
    session: SessionDep,
    ctx: Ctx,
    principal: Issuer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    fingerprint = request_fingerprint(body.model_dump(mode="json"))
    if idempotency_key:
        stored = await ctx.idempotency.lookup(session, principal, idempotency_key, fingerprint)
        if stored is not None:  # a retry: the same document, not a second number
            return JSONResponse(
                stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
            )
    if body.issued_on is not None:
        settings = ctx.settings
        assert isinstance(settings, NotifySettings)
        service.check_issue_date(
            body.issued_on, backdate_days=settings.document_backdate_days, today=today_in_china()
        )
    template = TEMPLATES.get(body.kind)
    if template is not None and not principal.has_role(*template.issuer_roles):
        raise Forbidden("Your role does not issue this kind of document.", code="document_kind_not_permitted")
    doc = await service.issue_document(
        session=session,
        ctx=ctx,
        kind=body.kind,
        issuing_org=principal.org,
        issued_by=principal.subject,
        fields=body.fields,
        recipient_org=body.recipient_org,
        case_id=body.case_id,
        addressee=body.addressee,
        issued_on=body.issued_on,
    )
    # The answer (which may be stored for replays) shows the addressee masked.
    _, rendered, addressee = await service.read_document(
        session=session, ctx=ctx, principal=replace(principal, purpose=None), document_id=doc.id
    )
    answer = _public(doc, rendered, addressee).model_dump(mode="json")
    if idempotency_key:
        await ctx.idempotency.save(session, principal, idempotency_key, fingerprint, 201, answer)
    return JSONResponse(answer, status_code=201)


@router.get("", summary="Documents issued by or addressed to the caller's jurisdiction")
async def list_documents(
    session: SessionDep,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    case_id: Annotated[str | None, Query(max_length=36)] = None,
    year: Annotated[int | None, Query(ge=2019, le=2100)] = None,
) -> Page[DocumentPublic]:
    rows = await repository.page(
        session,
        principal,
        after=decode_cursor(cursor, str),
        limit=limit,
        kind=kind,
        case_id=case_id,
        year=year,
    )
    return page_of([_public(r, None, None) for r in rows], limit, lambda d: d.id)


@router.get("/{document_id}", summary="One document (addressee masked unless a purpose is stated)")
async def get_document(document_id: str, session: SessionDep, ctx: Ctx, principal: Reader) -> DocumentPublic:
    doc, rendered, addressee = await service.read_document(
        session=session, ctx=ctx, principal=principal, document_id=document_id
    )
    return _public(doc, rendered, addressee)


@router.get("/{document_id}/html", response_class=Response, summary="The document as HTML")
async def get_html(document_id: str, session: SessionDep, ctx: Ctx, principal: Reader) -> Response:
    _, rendered, _ = await service.read_document(
        session=session, ctx=ctx, principal=principal, document_id=document_id
    )
    return Response(render.to_html(rendered), media_type="text/html; charset=utf-8")


@router.get("/{document_id}/pdf", response_class=Response, summary="The document as PDF (CJK font embedded)")
async def get_pdf(document_id: str, session: SessionDep, ctx: Ctx, principal: Reader) -> Response:
    doc, rendered, _ = await service.read_document(
        session=session, ctx=ctx, principal=principal, document_id=document_id
    )
    pdf = await asyncio.to_thread(render.to_pdf, rendered)  # CPU-bound: keep the event loop free
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{doc.id}.pdf"'},
    )


@router.patch(
    "/{document_id}",
    status_code=status.HTTP_409_CONFLICT,
    summary="Refused: issued documents are immutable",
    responses={409: {"description": "document_immutable"}},
)
@router.put("/{document_id}", status_code=status.HTTP_409_CONFLICT, include_in_schema=False)
async def edit_refused(document_id: str, _: CurrentPrincipal) -> None:
    raise Conflict(
        "An issued document cannot be edited; issue a correction instead "
        f"(POST /v1/documents/{document_id}/corrections).",
        code="document_immutable",
    )


@router.post(
    "/{document_id}/corrections",
    status_code=status.HTTP_201_CREATED,
    summary="Correct a document: a new version of the same number that references the old one",
)
async def correct(
    document_id: str, body: DocumentCorrection, session: SessionDep, ctx: Ctx, principal: Issuer
) -> DocumentPublic:
    doc = await service.correct_document(
        session=session,
        ctx=ctx,
        principal=principal,
        document_id=document_id,
        fields=body.fields,
        addressee=body.addressee,
        reason=body.reason,
    )
    return _public(doc, None, None)


@router.post(
    "/{document_id}/acknowledgements",
    status_code=status.HTTP_201_CREATED,
    summary="Record a parent's receipt or signed commitment (承诺书)",
)
async def acknowledge(
    document_id: str,
    body: AcknowledgementCreate,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("acknowledgement:record"))],
) -> AcknowledgementPublic:
    ack = await service.record_acknowledgement(
        session=session,
        ctx=ctx,
        principal=principal,
        document_id=document_id,
        kind=body.kind,
        acknowledged_on=body.acknowledged_on,
        signer=body.signer,
        evidence_ref=body.evidence_ref,
    )
    return AcknowledgementPublic(
        id=ack.id,
        document_id=ack.document_id,
        kind=ack.kind,
        acknowledged_on=ack.acknowledged_on,
        evidence_ref=ack.evidence_ref,
        recorded_org=ack.recorded_org,
    )
