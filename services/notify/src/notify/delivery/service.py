"""Inbox reading and acknowledging; webhook subscriptions and dead-letter replay."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.contracts.notify import NoticeAcknowledged
from baoxue.db import utcnow
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from notify.delivery import repository
from notify.delivery.email import address_aad, mask_address, valid_address
from notify.delivery.models import (
    MESSAGE_KINDS,
    EmailRecipient,
    Message,
    SmsMessage,
    WebhookDelivery,
    WebhookSubscription,
)
from notify.delivery.webhooks import secret_aad
from notify.documents.models import Document


async def _own_message(session: AsyncSession, principal: Principal, message_id: str) -> Message:
    msg = await repository.message(session, message_id)
    if msg is None or msg.recipient_org != principal.org:
        raise NotFound("No such message.")
    return msg


async def mark_read(*, session: AsyncSession, principal: Principal, message_id: str) -> Message:
    """Mark a message of the caller's own inbox read (the first reader and time are kept)."""
    msg = await _own_message(session, principal, message_id)
    if msg.read_at is None:
        msg.read_at, msg.read_by = utcnow(), principal.subject
        await session.flush()
    return msg


async def acknowledge(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, message_id: str
) -> Message:
    """Acknowledge receipt (回执) of a message of the caller's own inbox; it counts as read too. The first
    acknowledgement of a document's notice publishes NoticeAcknowledged (the document's number, kind and
    organisations, no person); a repeat changes nothing."""
    msg = await _own_message(session, principal, message_id)
    now = utcnow()
    if msg.read_at is None:
        msg.read_at, msg.read_by = now, principal.subject
    if msg.acknowledged_at is None:
        msg.acknowledged_at, msg.acknowledged_by = now, principal.subject
        document = (
            await session.get(Document, msg.ref_id) if msg.ref_type == "document" and msg.ref_id else None
        )
        if document is not None:
            await ctx.outbox.add(
                session,
                NoticeAcknowledged(**document.notice(), acknowledged_on=today_in_china()),
                subject=document.id,
                sequence=3,
            )
    await session.flush()
    return msg


async def subscribe(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    org: str,
    url: str,
    secret: str,
    kinds: list[str],
) -> WebhookSubscription:
    """Register a system for an organisation's messages; the secret is stored encrypted."""
    if ctx.directory.get(org) is None:
        raise Problem("The organisation is unknown.", code="organisation_unknown", status=422)
    subscription_id = str(uuid.uuid4())
    sub = WebhookSubscription(
        id=subscription_id,
        org=org,
        url=url,
        secret_enc=ctx.cipher.encrypt(secret, associated_data=secret_aad(subscription_id)),
        kinds=",".join(sorted(set(kinds))),
        created_by=principal.subject,
    )
    session.add(sub)
    await session.flush()
    return sub


async def replay(*, session: AsyncSession, delivery_id: str) -> WebhookDelivery:
    """Send a dead-lettered delivery (of any channel) again: attempts start over."""
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound("No such delivery.")
    if delivery.status != "dead":
        raise Conflict("Only dead-lettered deliveries can be replayed.", code="delivery_not_dead")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, utcnow()
    delivery.lease_owner = delivery.leased_until = None
    if delivery.channel == "sms":
        sms = await session.get(SmsMessage, delivery.id)
        if sms is not None:
            sms.status, sms.attempts = "pending", 0
    await session.flush()
    return delivery


async def add_email_recipient(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    org: str,
    address: str,
    kinds: list[str],
) -> EmailRecipient:
    """Register an organisation's contact address (bureau). The address is stored encrypted; errors
    never repeat it."""
    if ctx.directory.get(org) is None:
        raise Problem("The organisation is unknown.", code="organisation_unknown", status=422)
    address = address.strip()
    if not valid_address(address):
        raise Problem(
            "The email address is not valid.",
            code="email_address_invalid",
            status=422,
            errors=[{"field": "address", "code": "invalid", "message": "name@domain"}],
        )
    unknown = sorted(set(kinds) - set(MESSAGE_KINDS))
    if unknown:
        raise Problem(
            "Unknown message kinds.",
            code="message_kind_unknown",
            status=422,
            errors=[{"field": "kinds", "code": "unknown", "message": ",".join(unknown)}],
        )
    recipient_id = str(uuid.uuid4())
    recipient = EmailRecipient(
        id=recipient_id,
        org=org,
        address_enc=ctx.cipher.encrypt(address, associated_data=address_aad(recipient_id)),
        address_masked=mask_address(address),
        kinds=",".join(sorted(set(kinds))),
        created_by=principal.subject,
    )
    session.add(recipient)
    await session.flush()
    return recipient


async def deactivate_email_recipient(*, session: AsyncSession, recipient_id: str) -> EmailRecipient:
    """Stop emailing an address (its pending deliveries dead-letter as ``recipient_inactive``)."""
    recipient = await session.get(EmailRecipient, recipient_id)
    if recipient is None:
        raise NotFound("No such email recipient.")
    recipient.active = False
    await session.flush()
    return recipient
