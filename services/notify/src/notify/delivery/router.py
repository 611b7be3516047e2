"""Inbox and webhook endpoints."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from notify.delivery import repository, service
from notify.delivery.models import EmailRecipient, Message, SmsMessage, WebhookDelivery, WebhookSubscription
from notify.delivery.schemas import (
    DeliveryPublic,
    EmailRecipientCreate,
    EmailRecipientPublic,
    MessagePublic,
    SmsPublic,
    SmsRequest,
    WebhookCreate,
    WebhookPublic,
)
from notify.delivery.sms import document_sms, queue_document_sms
from notify.delivery.webhooks import deliver

log = logging.getLogger(__name__)
router = APIRouter(tags=["delivery"])
InboxReader = Annotated[Principal, Depends(requires("inbox:read"))]
WebhookAdmin = Annotated[Principal, Depends(requires("webhook:admin"))]


def _message(m: Message) -> MessagePublic:
    return MessagePublic(
        id=m.id,
        recipient_org=m.recipient_org,
        kind=m.kind,
        title=m.title,
        body=m.body,
        ref_type=m.ref_type,
        ref_id=m.ref_id,
        action_required=m.action_required,
        created_at=m.created_at,
        read_at=m.read_at,
        acknowledged_at=m.acknowledged_at,
    )


def _webhook(s: WebhookSubscription) -> WebhookPublic:
    return WebhookPublic(
        id=s.id,
        org=s.org,
        url=s.url,
        kinds=[k for k in s.kinds.split(",") if k],
        active=s.active,
        created_at=s.created_at,
    )


def _email_recipient(r: EmailRecipient) -> EmailRecipientPublic:
    return EmailRecipientPublic(
        id=r.id,
        org=r.org,
        address=r.address_masked,
        kinds=[k for k in r.kinds.split(",") if k],
        active=r.active,
        created_at=r.created_at,
    )


def _delivery(d: WebhookDelivery) -> DeliveryPublic:
    return DeliveryPublic(
        id=d.id,
        subscription_id=d.subscription_id,
        channel=d.channel,
        message_id=d.message_id,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_status=d.last_status,
        last_error=d.last_error,
        delivered_at=d.delivered_at,
    )


@router.get("/inbox", tags=["inbox"], summary="The caller's organisation's inbox, newest first")
async def inbox(
    session: SessionDep,
    principal: InboxReader,
    limit: Limit = 50,
    cursor: Cursor = None,
    unread: Annotated[bool, Query()] = False,
    kind: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[MessagePublic]:
    rows = await repository.inbox_page(
        session,
        principal.org,
        after=decode_cursor(cursor, (dt.datetime, str)),
        limit=limit,
        unread=unread,
        kind=kind,
    )
    return page_of([_message(r) for r in rows], limit, lambda m: [m.created_at.isoformat(), m.id])


@router.post("/inbox/{message_id}/read", tags=["inbox"], summary="Mark a message read")
async def read(message_id: str, session: SessionDep, principal: InboxReader) -> MessagePublic:
    return _message(await service.mark_read(session=session, principal=principal, message_id=message_id))


@router.post("/inbox/{message_id}/acknowledgement", tags=["inbox"], summary="Acknowledge receipt (回执)")
async def acknowledge(
    message_id: str, session: SessionDep, ctx: Ctx, principal: InboxReader
) -> MessagePublic:
    return _message(
        await service.acknowledge(session=session, ctx=ctx, principal=principal, message_id=message_id)
    )


@router.post(
    "/webhooks",
    status_code=status.HTTP_201_CREATED,
    tags=["webhooks"],
    summary="Subscribe another system to an organisation's messages (HMAC-SHA256 signed)",
)
async def subscribe(
    body: WebhookCreate, session: SessionDep, ctx: Ctx, principal: WebhookAdmin
) -> WebhookPublic:
    sub = await service.subscribe(
        session=session,
        ctx=ctx,
        principal=principal,
        org=body.org,
        url=str(body.url),
        secret=body.secret,
        kinds=body.kinds,
    )
    return _webhook(sub)


@router.get("/webhooks", tags=["webhooks"], summary="Webhook subscriptions")
async def list_webhooks(
    session: SessionDep, _: WebhookAdmin, limit: Limit = 50, cursor: Cursor = None
) -> Page[WebhookPublic]:
    rows = await repository.subscriptions(session, after=decode_cursor(cursor, str), limit=limit)
    return page_of([_webhook(r) for r in rows], limit, lambda s: s.id)


@router.post(
    "/email-recipients",
    status_code=status.HTTP_201_CREATED,
    tags=["webhooks"],
    summary="Email an organisation's messages to its contact address (stored encrypted, shown masked)",
)
async def add_email_recipient(
    body: EmailRecipientCreate, session: SessionDep, ctx: Ctx, principal: WebhookAdmin
) -> EmailRecipientPublic:
    recipient = await service.add_email_recipient(
        session=session, ctx=ctx, principal=principal, org=body.org, address=body.address, kinds=body.kinds
    )
    return _email_recipient(recipient)


@router.get("/email-recipients", tags=["webhooks"], summary="Organisations' email addresses (masked)")
async def list_email_recipients(
    session: SessionDep,
    _: WebhookAdmin,
    limit: Limit = 50,
    cursor: Cursor = None,
    org: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[EmailRecipientPublic]:
    rows = await repository.email_recipients(session, org=org, after=decode_cursor(cursor, str), limit=limit)
    return page_of([_email_recipient(r) for r in rows], limit, lambda r: r.id)


@router.post(
    "/email-recipients/{recipient_id}/deactivation", tags=["webhooks"], summary="Stop emailing an address"
)
async def deactivate_email_recipient(
    recipient_id: str, session: SessionDep, _: WebhookAdmin
) -> EmailRecipientPublic:
    return _email_recipient(
        await service.deactivate_email_recipient(session=session, recipient_id=recipient_id)
    )


@router.get(
    "/webhook-deliveries",
    tags=["webhooks"],
    summary="The delivery log of webhooks, email and SMS (status=dead: dead letters)",
)
async def list_deliveries(
    session: SessionDep,
    _: WebhookAdmin,
    limit: Limit = 50,
    cursor: Cursor = None,
    subscription_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$")] = None,
    channel: Annotated[str | None, Query(pattern="^(webhook|email|sms)$")] = None,
) -> Page[DeliveryPublic]:
    rows = await repository.deliveries(
        session,
        subscription_id=subscription_id,
        status=status,
        after=decode_cursor(cursor, str),
        limit=limit,
        channel=channel,
    )
    return page_of([_delivery(r) for r in rows], limit, lambda d: d.id)


@router.post("/webhook-deliveries/{delivery_id}/replay", tags=["webhooks"], summary="Replay a dead letter")
async def replay(delivery_id: str, session: SessionDep, _: WebhookAdmin) -> DeliveryPublic:
    return _delivery(await service.replay(session=session, delivery_id=delivery_id))


def _sms(sms: SmsMessage, delivery: WebhookDelivery | None) -> SmsPublic:
    return SmsPublic(
        id=sms.id,
        document_id=sms.document_id,
        phone=sms.phone_masked,
        text=sms.text,
        status=sms.status,
        attempts=sms.attempts,
        last_error=sms.last_error,
        next_attempt_at=delivery.next_attempt_at
        if delivery is not None and delivery.status == "pending"
        else None,
        created_at=sms.created_at,
    )


@router.post(
    "/documents/{document_id}/sms",
    status_code=status.HTTP_201_CREATED,
    tags=["documents"],
    summary="Text a guardian that a document waits for them (SMS gateway; queued, first attempt at once)",
)
async def send_sms(
    document_id: str,
    body: SmsRequest,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("document:issue"))],
) -> SmsPublic:
    """The message is queued in the request's transaction; once that has committed it is attempted once
    (outside any transaction) and the answer shows the outcome: ``accepted``, ``pending`` (retried with
    backoff by the delivery loop; ``next_attempt_at``) or ``failed`` (refused by the gateway)."""
    async with ctx.db.transaction() as session:
        sms_id = (
            await queue_document_sms(
                session=session, ctx=ctx, principal=principal, document_id=document_id, phone=body.phone
            )
        ).id
    try:
        await deliver(ctx, [sms_id])
    except Exception as exc:  # queued and committed: the delivery loop sends it (no 500 inviting a repeat)
        log.warning("sms first attempt failed", extra={"sms_id": sms_id, "error": type(exc).__name__})
    async with ctx.db.transaction() as session:
        sms = await session.get(SmsMessage, sms_id)
        assert sms is not None
        return _sms(sms, await session.get(WebhookDelivery, sms_id))


@router.get(
    "/documents/{document_id}/sms",
    tags=["documents"],
    summary="A document's text messages with their delivery status (phones masked)",
)
async def list_sms(
    document_id: str,
    session: SessionDep,
    principal: Annotated[Principal, Depends(requires("document:issue"))],
) -> list[SmsPublic]:
    rows = await document_sms(session=session, principal=principal, document_id=document_id)
    return [_sms(sms, delivery) for sms, delivery in rows]
