"""The delivery queue of all three channels — webhook, email, SMS: one table (``webhook_deliveries``), one
attempt log (``webhook_attempts``), one retry policy. No database transaction is open while a message is
on the network:

1. **claim** — one short transaction: a single ``UPDATE`` leases the due deliveries to this worker
   (``lease_owner`` = a fresh token, ``leased_until`` = now + ``NOTIFY_DELIVERY_LEASE_SECONDS``); the
   rows to lease are chosen ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite runs one writer at a time),
   and the ``UPDATE`` itself re-checks that each row is still free. A delivery leased by another worker
   is skipped until its lease expires. What sending needs (URL, secret, address, phone — decrypted in
   memory only) is read in the same transaction.
2. **send** — outside any transaction, the claimed deliveries at once, each cut off at half the lease
   (so it ends before another worker may take the delivery over).
3. **record** — per delivery one short transaction, only while this worker still holds the lease: the
   attempt is logged, and the delivery is delivered, scheduled again (exponential backoff) or
   dead-lettered after the last attempt or a permanent error.

A worker that dies between 1 and 3 leaves its deliveries leased: nothing is lost — when the lease has
expired another worker sends them again. The receiver may then get a message twice and recognises the
repeat by the delivery id, the same on every attempt (``X-Baoxue-Delivery`` header of webhooks and SMS,
``Message-ID`` of email). Two workers never send one delivery at the same time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.contracts.notify import NoticeDelivered
from baoxue.db import utcnow
from baoxue.service import ServiceContext
from notify.delivery.models import Message, SmsMessage, WebhookAttempt, WebhookDelivery
from notify.documents.models import Document
from notify.settings import NotifySettings

if TYPE_CHECKING:
    from notify.delivery.email import SmtpMailer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: no error = delivered. Codes only, never an address or a text."""

    status_code: int | None = None
    error: str | None = None
    permanent: bool = False
    reference: str | None = None
    """The receiver's id of the message (the SMS gateway's)."""


Send = Callable[[], Awaitable[Outcome]]


@dataclass(frozen=True)
class Transport:
    """The clients a worker sends with."""

    http: httpx.AsyncClient
    mailer: SmtpMailer


Prepare = Callable[[AsyncSession, ServiceContext, WebhookDelivery, Transport], Awaitable[Send]]
"""Per channel: read what sending the delivery needs (inside the claim's transaction) and return the send,
which runs after the transaction."""


@dataclass(frozen=True)
class Claimed:
    id: str
    channel: str
    attempts: int
    """Attempts before this one."""
    owner: str
    leased_until: dt.datetime
    send: Send


def outcome_now(outcome: Outcome) -> Send:
    """A send that needs no network (the recipient is gone, the channel is not configured)."""

    async def send() -> Outcome:
        return outcome

    return send


def backoff(settings: NotifySettings, attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=settings.webhook_backoff_seconds * 2 ** max(0, attempts - 1))


def _settings(ctx: ServiceContext) -> NotifySettings:
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    return settings


async def claim(
    ctx: ServiceContext,
    *,
    transport: Transport,
    preparers: Mapping[str, Prepare],
    now: dt.datetime | None = None,
    limit: int | None = None,
    ids: Sequence[str] | None = None,
) -> list[Claimed]:
    """Lease due deliveries (of ``ids`` only, when given) to a fresh owner token and prepare their sends,
    in one short transaction."""
    settings = _settings(ctx)
    now = now or utcnow()
    owner = str(uuid.uuid4())
    leased_until = now + dt.timedelta(seconds=settings.delivery_lease_seconds)
    table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    free = (
        (table.c.status == "pending")
        & (table.c.next_attempt_at <= now)
        & (table.c.leased_until.is_(None) | (table.c.leased_until <= now))
    )
    due = select(table.c.id).where(free)
    if ids is not None:
        due = due.where(table.c.id.in_(list(ids)))
    due = (
        due.order_by(table.c.next_attempt_at)
        .limit(limit or settings.delivery_batch)
        .with_for_update(skip_locked=True)
    )
    claimed: list[Claimed] = []
    async with ctx.db.transaction() as session:
        result = await session.execute(
            update(table)
            .where(table.c.id.in_(due), free)
            .values(lease_owner=owner, leased_until=leased_until)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return []
        rows = (
            await session.execute(
                select(WebhookDelivery)
                .where(col(WebhookDelivery.lease_owner) == owner)
                .order_by(col(WebhookDelivery.next_attempt_at))
            )
        ).scalars()
        for delivery in rows:
            prepare = preparers.get(delivery.channel)
            send = (
                await prepare(session, ctx, delivery, transport)
                if prepare is not None
                else outcome_now(Outcome(error="channel_unknown", permanent=True))
            )
            claimed.append(
                Claimed(delivery.id, delivery.channel, delivery.attempts, owner, leased_until, send)
            )
    return claimed


async def attempt(ctx: ServiceContext, job: Claimed) -> str | None:
    """Send one claimed delivery (cut off at half the lease) and record the outcome; the delivery's new
    status, or None when the lease was lost."""
    settings = _settings(ctx)
    started = time.monotonic()
    try:
        async with asyncio.timeout(settings.delivery_lease_seconds / 2):
            outcome = await job.send()
    except TimeoutError:
        outcome = Outcome(error="send_timeout")
    except Exception as exc:  # a defect of a sender: logged by type only (its text may hold an address)
        log.error("delivery send failed", extra={"delivery_id": job.id, "error": type(exc).__name__})
        outcome = Outcome(error=type(exc).__name__)
    return await record(ctx, job, outcome, duration_ms=int((time.monotonic() - started) * 1000))


async def record(ctx: ServiceContext, job: Claimed, outcome: Outcome, *, duration_ms: int = 0) -> str | None:
    """Log the attempt and mark the delivery delivered, due again after the backoff, or dead — in one short
    transaction, only while ``job.owner`` holds the lease (else nothing changes and None is returned)."""
    settings = _settings(ctx)
    attempts = job.attempts + 1
    now = utcnow()
    values: dict[str, object] = {
        "attempts": attempts,
        "last_status": outcome.status_code,
        "last_error": outcome.error,
        "lease_owner": None,
        "leased_until": None,
    }
    if outcome.error is None:
        status = "delivered"
        values |= {"status": status, "delivered_at": now}
    elif outcome.permanent or attempts >= settings.webhook_max_attempts:
        status = "dead"
        values["status"] = status
    else:
        status = "pending"
        values["next_attempt_at"] = now + backoff(settings, attempts)
    table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    async with ctx.db.transaction() as session:
        result = await session.execute(
            update(table)
            .where(table.c.id == job.id, table.c.lease_owner == job.owner, table.c.status == "pending")
            .values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            log.warning("delivery lease lost", extra={"delivery_id": job.id, "channel": job.channel})
            return None
        session.add(
            WebhookAttempt(
                delivery_id=job.id,
                attempt=attempts,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=duration_ms,
            )
        )
        document_id: str | None = None
        if job.channel == "sms":
            sms = await session.get(SmsMessage, job.id)
            if sms is not None:
                sms.attempts, sms.last_error = attempts, outcome.error
                sms.status = {"delivered": "accepted", "dead": "failed"}.get(status, "pending")
                if outcome.reference:
                    sms.gateway_id = outcome.reference[:80]
                document_id = sms.document_id
        elif status == "delivered":
            delivery = await session.get(WebhookDelivery, job.id)
            message = await session.get(Message, delivery.message_id) if delivery is not None else None
            if message is not None and message.ref_type == "document":
                document_id = message.ref_id
        if status == "delivered" and document_id is not None:
            await _notice_delivered(session, ctx, document_id, job.channel)
    if status == "dead":
        log.warning(
            "delivery dead-lettered",
            extra={"delivery_id": job.id, "channel": job.channel, "error": outcome.error},
        )
    return status


async def _notice_delivered(
    session: AsyncSession, ctx: ServiceContext, document_id: str, channel: str
) -> None:
    """A document reached its recipient's system, mailbox or phone: NoticeDelivered (webhook / email / sms)."""
    doc = await session.get(Document, document_id)
    if doc is None:
        return
    await ctx.outbox.add(
        session,
        NoticeDelivered(**doc.notice(), channel=channel),
        subject=doc.id,
        sequence=2,
    )


async def run(ctx: ServiceContext, jobs: Sequence[Claimed]) -> None:
    """Attempt the claimed deliveries concurrently; a failure to record one (the database is down) leaves
    it leased, to be sent again after the lease."""
    results = await asyncio.gather(*(attempt(ctx, job) for job in jobs), return_exceptions=True)
    for job, result in zip(jobs, results, strict=True):
        if isinstance(result, BaseException):
            log.error(
                "delivery outcome not recorded",
                extra={"delivery_id": job.id, "channel": job.channel, "error": type(result).__name__},
            )
