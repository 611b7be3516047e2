"""Issuing, correcting, reading and acknowledging numbered documents."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.jurisdiction import ensure_within
from baoxue.auth.principal import Principal
from baoxue.contracts.notify import NoticeAcknowledged, NoticeDelivered, NoticeIssued
from baoxue.errors import Conflict, Forbidden, NotFound, Problem
from baoxue.pii.masking import mask_name
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from notify.delivery.inbox import Post, post_messages
from notify.documents import repository
from notify.documents.models import Acknowledgement, Document
from notify.documents.render import RenderedDocument
from notify.documents.templates import ADDRESSEE, TEMPLATES


def addressee_aad(document_id: str) -> bytes:
    """Associated data of ``documents.addressee_enc`` (also declared for key rotation in notify.pii_columns)."""
    return f"documents:{document_id}".encode()


def signer_aad(acknowledgement_id: str) -> bytes:
    """Associated data of ``document_acknowledgements.signer_enc``."""
    return f"acknowledgements:{acknowledgement_id}".encode()


def _org_name(ctx: ServiceContext, code: str | None) -> str | None:
    if code is None:
        return None
    org = ctx.directory.get(code)
    return org.name_zh if org is not None else code


def _content(
    ctx: ServiceContext, kind: str, fields: Mapping[str, str], issuing_org: str, recipient_org: str | None
) -> tuple[str, list[str]]:
    template = TEMPLATES.get(kind)
    if template is None:
        raise Problem(f"Unknown document kind '{kind}'.", code="document_kind_unknown", status=422)
    missing = [name for name in template.required if not fields.get(name)]
    if missing:
        raise Problem(
            "The template needs more fields.",
            code="document_fields_missing",
            status=422,
            errors=[
                {"field": f"fields.{name}", "code": "missing", "message": "required"} for name in missing
            ],
        )
    issuer = _org_name(ctx, issuing_org) or issuing_org
    return template.title, template.build(fields, issuer, _org_name(ctx, recipient_org))


def check_issue_date(issued_on: dt.date, *, backdate_days: int, today: dt.date) -> None:
    """The date a caller gives a document it issues (its year is the number's): not after today, at most
    ``backdate_days`` before it (a paper document entered late). 422 ``document_date_out_of_range``. The
    ladder's own documents are dated by the sweep and are not checked."""
    earliest = today - dt.timedelta(days=backdate_days)
    if not earliest <= issued_on <= today:
        raise Problem(
            f"A document's date must lie between {earliest.isoformat()} and today, {today.isoformat()} "
            f"(Asia/Shanghai; NOTIFY_DOCUMENT_BACKDATE_DAYS = {backdate_days}).",
            code="document_date_out_of_range",
            status=422,
            errors=[{"field": "issued_on", "code": "out_of_range", "message": f"{earliest} .. {today}"}],
        )


async def issue_document(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    kind: str,
    issuing_org: str,
    issued_by: str,
    fields: Mapping[str, str],
    recipient_org: str | None = None,
    case_id: str | None = None,
    escalation_id: str | None = None,
    addressee: str | None = None,
    issued_on: dt.date | None = None,
) -> Document:
    """Issue a document with the next number of (issuing_org, year): no gaps, no repeats. Publishes
    NoticeIssued; a document with a recipient organisation lands in its inbox (NoticeDelivered, inbox)."""
    if recipient_org is not None and ctx.directory.get(recipient_org) is None:
        raise Problem("The recipient organisation is unknown.", code="recipient_unknown", status=422)
    title, paragraphs = _content(ctx, kind, fields, issuing_org, recipient_org)
    day = issued_on or today_in_china()
    seq = await repository.next_seq(session, issuing_org, day.year)
    return await _insert(
        session=session,
        ctx=ctx,
        kind=kind,
        issuing_org=issuing_org,
        year=day.year,
        seq=seq,
        version=1,
        supersedes_id=None,
        title=title,
        paragraphs=paragraphs,
        fields=fields,
        recipient_org=recipient_org,
        case_id=case_id,
        escalation_id=escalation_id,
        addressee=addressee,
        issued_by=issued_by,
        issued_on=day,
    )


async def _insert(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    kind: str,
    issuing_org: str,
    year: int,
    seq: int,
    version: int,
    supersedes_id: str | None,
    title: str,
    paragraphs: list[str],
    fields: Mapping[str, str],
    recipient_org: str | None,
    case_id: str | None,
    escalation_id: str | None,
    addressee: str | None,
    issued_by: str,
    issued_on: dt.date,
    correction_reason: str | None = None,
) -> Document:
    document_id = str(uuid.uuid4())
    content = json.dumps(paragraphs, ensure_ascii=False)
    doc = Document(
        id=document_id,
        kind=kind,
        issuing_org=issuing_org,
        year=year,
        seq=seq,
        version=version,
        number=f"{issuing_org}〔{year}〕{seq:04d}号",
        supersedes_id=supersedes_id,
        correction_reason=correction_reason,
        recipient_org=recipient_org,
        case_id=case_id,
        escalation_id=escalation_id,
        title=title,
        content=content,
        fields=json.dumps(dict(fields), ensure_ascii=False, sort_keys=True),
        addressee_enc=ctx.cipher.encrypt(addressee, associated_data=addressee_aad(document_id))
        if addressee
        else None,
        content_sha256=hashlib.sha256(f"{title}\n{content}".encode()).hexdigest(),
        issued_by=issued_by,
        issued_on=issued_on,
    )
    session.add(doc)
    await session.flush()
    await ctx.outbox.add(session, NoticeIssued(**doc.notice()), subject=doc.id, sequence=1)
    if recipient_org is not None:
        await post_messages(
            session,
            [
                Post(
                    recipient_org,
                    "notice",
                    f"{title} {doc.number}",
                    ref_type="document",
                    ref_id=doc.id,
                    action_required=True,
                )
            ],
        )
        await ctx.outbox.add(
            session, NoticeDelivered(**doc.notice(), channel="inbox"), subject=doc.id, sequence=2
        )
    return doc


async def correct_document(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    document_id: str,
    fields: Mapping[str, str],
    addressee: str | None,
    reason: str,
) -> Document:
    """A correction: a new version under the same number that references the one it corrects. Only the
    latest version can be corrected (409 ``document_superseded``); only its issuer may correct it."""
    old = await repository.get(session, document_id)
    if old is None:
        raise NotFound("No such document.")
    ensure_within(principal, old.issuing_org, old.recipient_org, resource="document")
    if old.issuing_org != principal.org:
        raise Forbidden("Only the issuing organisation may correct a document.", code="not_the_issuer")
    latest = await repository.latest_version(session, old)
    if latest != old.version:
        raise Conflict(
            "This version has been corrected already; correct the latest one.", code="document_superseded"
        )
    title, paragraphs = _content(ctx, old.kind, fields, old.issuing_org, old.recipient_org)
    if addressee is None and old.addressee_enc:
        addressee = ctx.cipher.decrypt(old.addressee_enc, associated_data=addressee_aad(old.id))
    return await _insert(
        session=session,
        ctx=ctx,
        kind=old.kind,
        issuing_org=old.issuing_org,
        year=old.year,
        seq=old.seq,
        version=old.version + 1,
        supersedes_id=old.id,
        title=title,
        paragraphs=paragraphs,
        fields=fields,
        recipient_org=old.recipient_org,
        case_id=old.case_id,
        escalation_id=old.escalation_id,
        addressee=addressee,
        issued_by=principal.subject,
        issued_on=today_in_china(),
        correction_reason=reason,
    )


async def read_document(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, document_id: str
) -> tuple[Document, RenderedDocument, str | None]:
    """The document, rendered, with the addressee in clear only for a caller who stated a purpose (that
    read is audited); others see it masked. 404 outside the caller's jurisdiction."""
    doc = await repository.get(session, document_id)
    if doc is None:
        raise NotFound("No such document.")
    ensure_within(principal, doc.issuing_org, doc.recipient_org, resource="document")
    addressee: str | None = None
    shown = "家长"
    if doc.addressee_enc:
        clear = ctx.cipher.decrypt(doc.addressee_enc, associated_data=addressee_aad(doc.id))
        if principal.purpose:
            await ctx.audit.record(
                session, principal, "read", "document_addressee", [doc.id], purpose=principal.purpose
            )
            addressee = shown = clear
        else:
            addressee = shown = mask_name(clear)
    supersedes_number = None
    if doc.supersedes_id:
        previous = await repository.get(session, doc.supersedes_id)
        supersedes_number = f"{previous.number}第{previous.version}版" if previous else None
    paragraphs = [p.replace(ADDRESSEE, shown) for p in json.loads(doc.content)]
    rendered = RenderedDocument(
        title=doc.title,
        number=doc.number,
        issuer_name=_org_name(ctx, doc.issuing_org) or doc.issuing_org,
        issued_on=f"{doc.issued_on.year}年{doc.issued_on.month}月{doc.issued_on.day}日",
        paragraphs=paragraphs,
        version=doc.version,
        supersedes_number=supersedes_number,
    )
    return doc, rendered, addressee


async def record_acknowledgement(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    document_id: str,
    kind: str,
    acknowledged_on: dt.date,
    signer: str | None,
    evidence_ref: str | None,
) -> Acknowledgement:
    """Record a parent's receipt / signed commitment (承诺书) / refusal of a document; publishes
    NoticeAcknowledged for receipts and commitments."""
    doc = await repository.get(session, document_id)
    if doc is None:
        raise NotFound("No such document.")
    ensure_within(principal, doc.issuing_org, doc.recipient_org, resource="document")
    ack_id = str(uuid.uuid4())
    ack = Acknowledgement(
        id=ack_id,
        document_id=doc.id,
        kind=kind,
        acknowledged_on=acknowledged_on,
        signer_enc=ctx.cipher.encrypt(signer, associated_data=signer_aad(ack_id)) if signer else None,
        evidence_ref=evidence_ref,
        recorded_by=principal.subject,
        recorded_org=principal.org,
    )
    session.add(ack)
    await session.flush()
    if kind != "refused":
        await ctx.outbox.add(
            session,
            NoticeAcknowledged(**doc.notice(), acknowledged_on=acknowledged_on),
            subject=doc.id,
            sequence=3,
        )
    return ack
