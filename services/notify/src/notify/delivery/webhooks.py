"""Pushing inbox messages to subscribed systems (HMAC-SHA256-signed POSTs), and the delivery loop of all
three channels: webhooks here, email (``notify.delivery.email``) and SMS (``notify.delivery.sms``) on the
one delivery queue (``notify.delivery.queue``: claim with a lease, send outside any transaction, record
each outcome; retries with exponential backoff, dead letters, one attempt log).

Signature: ``X-Baoxue-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``; the
receiver recomputes it over the raw body and refuses old timestamps. ``X-Baoxue-Delivery`` is the same on
every retry so a receiver can drop a repeat it already processed (after a lost reply, or a worker that
died after sending and before recording).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Sequence

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.service import ServiceContext
from notify.delivery import queue
from notify.delivery.email import SmtpMailer, address_aad, prepare_email
from notify.delivery.models import WebhookDelivery, WebhookSubscription
from notify.delivery.queue import Outcome, Send, Transport, outcome_now
from notify.delivery.sms import prepare_sms
from notify.settings import NotifySettings

__all__ = ["address_aad", "deliver", "deliver_due", "delivery_loop", "secret_aad", "sign", "verify"]


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


async def prepare_webhook(
    session: AsyncSession, ctx: ServiceContext, delivery: WebhookDelivery, transport: Transport
) -> Send:
    """The webhook channel: the subscription's URL and secret read inside the claim's transaction; the
    POST (signed when it is sent) after it. A 2xx reply delivers; anything else is retried; an inactive
    subscription is permanent."""
    subscription = await session.get(WebhookSubscription, delivery.subscription_id)
    if subscription is None or not subscription.active:
        return outcome_now(Outcome(error="subscription_inactive", permanent=True))
    secret = ctx.cipher.decrypt(subscription.secret_enc, associated_data=secret_aad(subscription.id))
    url, body, delivery_id = subscription.url, delivery.payload.encode(), delivery.id

    async def send() -> Outcome:
        headers = {
            "Content-Type": "application/json",
            "X-Baoxue-Delivery": delivery_id,
            "X-Baoxue-Signature": sign(secret, int(time.time()), body),
        }
        try:
            response = await transport.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(error=type(exc).__name__)
        if 200 <= response.status_code < 300:
            return Outcome(status_code=response.status_code)
        return Outcome(status_code=response.status_code, error=f"http_{response.status_code}")

    return send


PREPARERS: dict[str, queue.Prepare] = {"webhook": prepare_webhook, "email": prepare_email, "sms": prepare_sms}


async def _deliver(
    ctx: ServiceContext,
    *,
    client: httpx.AsyncClient | None,
    now: dt.datetime | None,
    limit: int | None,
    ids: Sequence[str] | None,
) -> int:
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    own_client = client is None
    http = client or httpx.AsyncClient(timeout=settings.webhook_timeout_seconds)
    try:
        transport = Transport(http=http, mailer=SmtpMailer(settings))
        jobs = await queue.claim(ctx, transport=transport, preparers=PREPARERS, now=now, limit=limit, ids=ids)
        await queue.run(ctx, jobs)
    finally:
        if own_client:
            await http.aclose()
    return len(jobs)


async def deliver_due(
    ctx: ServiceContext,
    *,
    client: httpx.AsyncClient | None = None,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Claim the due deliveries of every channel (at most ``limit``, default ``NOTIFY_DELIVERY_BATCH``),
    attempt them and record each outcome; returns how many were attempted. ``now`` is the time the claim
    judges due dates and leases by (tests: a later time is after a dead worker's lease)."""
    return await _deliver(ctx, client=client, now=now, limit=limit, ids=None)


async def deliver(ctx: ServiceContext, ids: Sequence[str], *, client: httpx.AsyncClient | None = None) -> int:
    """Attempt the given deliveries now when they are due and free (a request's own first attempt)."""
    return await _deliver(ctx, client=client, now=None, limit=len(ids), ids=ids)


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
