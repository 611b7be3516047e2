"""Pushing inbox messages to subscribed systems (HMAC-SHA256-signed POSTs) and to organisations' email
addresses (SMTP, ``notify.delivery.email``): retries with exponential backoff, dead letters after the last
attempt, and a log of every attempt — one log for both channels.

Signature: ``X-Baoxue-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``; the
receiver recomputes it over the raw body and refuses old timestamps. ``X-Baoxue-Delivery`` is the same on
every retry so a receiver can drop a repeat it already processed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import time

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.contracts.notify import NoticeDelivered
from baoxue.db import utcnow
from baoxue.service import ServiceContext
from notify.delivery.email import EmailFailed, SmtpMailer, compose
from notify.delivery.models import (
    EmailRecipient,
    Message,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from notify.documents.models import Document
from notify.settings import NotifySettings

log = logging.getLogger(__name__)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: int | None = None, tolerance: int = 300) -> bool:
    """Check a signature header (for receivers and tests)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or int(time.time())) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def secret_aad(subscription_id: str) -> bytes:
    return f"webhook_subscriptions:{subscription_id}".encode()


def address_aad(recipient_id: str) -> bytes:
    return f"email_recipients:{recipient_id}".encode()


def backoff(settings: NotifySettings, attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=settings.webhook_backoff_seconds * 2 ** max(0, attempts - 1))


async def _due(session: AsyncSession, now: dt.datetime, limit: int) -> list[WebhookDelivery]:
    statement = (
        select(WebhookDelivery)
        .where(col(WebhookDelivery.status) == "pending", col(WebhookDelivery.next_attempt_at) <= now)
        .order_by(col(WebhookDelivery.next_attempt_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(statement)).scalars())


async def deliver_due(
    ctx: ServiceContext, *, client: httpx.AsyncClient | None = None, limit: int = 100
) -> int:
    """Attempt every delivery that is due; returns how many were attempted. Each attempt is logged; a
    2xx marks the delivery delivered, anything else schedules a retry or, after the last attempt,
    dead-letters it."""
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    own_client = client is None
    http = client or httpx.AsyncClient(timeout=settings.webhook_timeout_seconds)
    mailer = SmtpMailer(settings)
    attempted = 0
    try:
        async with ctx.db.transaction() as session:
            for delivery in await _due(session, utcnow(), limit):
                attempted += 1
                if delivery.channel == "email":
                    recipient = await session.get(EmailRecipient, delivery.subscription_id)
                    await _attempt_email(session, ctx, settings, mailer, delivery, recipient)
                    continue
                subscription = await session.get(WebhookSubscription, delivery.subscription_id)
                await _attempt(session, ctx, settings, http, delivery, subscription)
    finally:
        if own_client:
            await http.aclose()
    return attempted


async def _attempt(
    session: AsyncSession,
    ctx: ServiceContext,
    settings: NotifySettings,
    http: httpx.AsyncClient,
    delivery: WebhookDelivery,
    subscription: WebhookSubscription | None,
) -> None:
    delivery.attempts += 1
    status_code: int | None = None
    error: str | None = None
    started = time.monotonic()
    if subscription is None or not subscription.active:
        error = "subscription_inactive"
    else:
        secret = ctx.cipher.decrypt(subscription.secret_enc, associated_data=secret_aad(subscription.id))
        body = delivery.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "X-Baoxue-Delivery": delivery.id,
            "X-Baoxue-Signature": sign(secret, int(time.time()), body),
        }
        try:
            response = await http.post(subscription.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"http_{status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
    await _settle(
        session,
        ctx,
        settings,
        delivery,
        status_code=status_code,
        error=error,
        permanent=error == "subscription_inactive",
        started=started,
    )


async def _attempt_email(
    session: AsyncSession,
    ctx: ServiceContext,
    settings: NotifySettings,
    mailer: SmtpMailer,
    delivery: WebhookDelivery,
    recipient: EmailRecipient | None,
) -> None:
    """One SMTP send. The delivery log keeps the reply code (``last_status``) and ``smtp_<code>``; a
    5xx reply, an inactive recipient or a missing configuration are permanent."""
    delivery.attempts += 1
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    permanent = False
    if recipient is None or not recipient.active:
        error, permanent = "recipient_inactive", True
    elif not mailer.configured:
        error = "smtp_unconfigured"
    else:
        address = ctx.cipher.decrypt(recipient.address_enc, associated_data=address_aad(recipient.id))
        org = ctx.directory.get(recipient.org)
        message = compose(
            settings=settings,
            to=address,
            recipient_name=org.name_zh if org is not None else recipient.org,
            payload=json.loads(delivery.payload),
            delivery_id=delivery.id,
        )
        try:
            await mailer.send(message)
            status_code = 250
        except EmailFailed as exc:
            status_code, error, permanent = exc.reply, exc.code, not exc.transient
    await _settle(
        session,
        ctx,
        settings,
        delivery,
        status_code=status_code,
        error=error,
        permanent=permanent,
        started=started,
    )


async def _settle(
    session: AsyncSession,
    ctx: ServiceContext,
    settings: NotifySettings,
    delivery: WebhookDelivery,
    *,
    status_code: int | None,
    error: str | None,
    permanent: bool,
    started: float,
) -> None:
    """Log the attempt; mark the delivery delivered, schedule the retry, or dead-letter it."""
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            status_code=status_code,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
    )
    delivery.last_status, delivery.last_error = status_code, error
    if error is None:
        delivery.status, delivery.delivered_at = "delivered", utcnow()
        await _record_notice_delivery(session, ctx, delivery)
    elif delivery.attempts >= settings.webhook_max_attempts or permanent:
        delivery.status = "dead"
        log.warning(
            "delivery dead-lettered",
            extra={"delivery_id": delivery.id, "channel": delivery.channel, "error": error},
        )
    else:
        delivery.next_attempt_at = utcnow() + backoff(settings, delivery.attempts)
    await session.flush()


async def _record_notice_delivery(
    session: AsyncSession, ctx: ServiceContext, delivery: WebhookDelivery
) -> None:
    """A message about a document reached the recipient's system or mailbox: NoticeDelivered (webhook /
    email)."""
    message = await session.get(Message, delivery.message_id)
    if message is None or message.ref_type != "document" or message.ref_id is None:
        return
    doc = await session.get(Document, message.ref_id)
    if doc is None:
        return
    await ctx.outbox.add(
        session,
        NoticeDelivered(
            notice_id=doc.id,
            number=doc.number,
            kind=doc.kind,
            issuing_org=doc.issuing_org,
            recipient_org=doc.recipient_org,
            case_id=doc.case_id,
            channel=delivery.channel,
        ),
        subject=doc.id,
        sequence=2,
    )


async def delivery_loop(ctx: ServiceContext) -> None:
    """ServiceSpec.background: attempt due deliveries every ``delivery_interval_seconds``."""
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    if not settings.delivery_enabled:
        return
    async with httpx.AsyncClient(timeout=settings.webhook_timeout_seconds) as client:
        while True:
            if await deliver_due(ctx, client=client) == 0:
                await asyncio.sleep(settings.delivery_interval_seconds)
