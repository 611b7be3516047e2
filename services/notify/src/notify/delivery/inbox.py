"""Posting to inboxes (used by every domain) and fanning messages out to webhook subscribers and to the
organisations' email addresses (one delivery each, on the same delivery log)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.db import utcnow
from notify.delivery.models import EmailRecipient, Message, WebhookDelivery, WebhookSubscription


@dataclass(frozen=True)
class Post:
    """A message to post: no personal data in title or body (codes and surrogate ids only)."""

    recipient_org: str
    kind: str
    title: str
    body: str = ""
    ref_type: str | None = None
    ref_id: str | None = None
    action_required: bool = False


async def post_messages(session: AsyncSession, posts: Sequence[Post]) -> list[str]:
    """Insert messages with one multi-row insert and queue a webhook delivery for each active
    subscription of the recipient (kinds filter applied). Returns the message ids in order."""
    if not posts:
        return []
    now = utcnow()
    rows = [
        {
            "id": str(uuid.uuid4()),
            "recipient_org": p.recipient_org,
            "kind": p.kind,
            "title": p.title,
            "body": p.body,
            "ref_type": p.ref_type,
            "ref_id": p.ref_id,
            "action_required": p.action_required,
            "created_at": now,
        }
        for p in posts
    ]
    await session.execute(insert(Message.__table__), rows)  # type: ignore[attr-defined]
    recipients = {p.recipient_org for p in posts}
    subscriptions = (
        (
            await session.execute(
                select(WebhookSubscription).where(
                    col(WebhookSubscription.org).in_(recipients),  # type: ignore[attr-defined]
                    col(WebhookSubscription.active).is_(True),  # type: ignore[attr-defined]
                )
            )
        )
        .scalars()
        .all()
    )
    emails = (
        (
            await session.execute(
                select(EmailRecipient).where(
                    col(EmailRecipient.org).in_(recipients),  # type: ignore[attr-defined]
                    col(EmailRecipient.active).is_(True),  # type: ignore[attr-defined]
                )
            )
        )
        .scalars()
        .all()
    )
    targets: list[tuple[str, str, str, str]] = [
        (sub.id, "webhook", sub.org, sub.kinds) for sub in subscriptions
    ] + [(rcpt.id, "email", rcpt.org, rcpt.kinds) for rcpt in emails]
    deliveries = []
    for row in rows:
        for target_id, channel, org, kinds_text in targets:
            kinds = {k for k in kinds_text.split(",") if k}
            if org != row["recipient_org"] or (kinds and row["kind"] not in kinds):
                continue
            delivery_id = str(uuid.uuid4())
            payload = {
                "delivery_id": delivery_id,
                "message_id": row["id"],
                "org": row["recipient_org"],
                "kind": row["kind"],
                "title": row["title"],
                "body": row["body"],
                "ref_type": row["ref_type"],
                "ref_id": row["ref_id"],
                "action_required": row["action_required"],
                "created_at": now.isoformat(),
            }
            deliveries.append(
                {
                    "id": delivery_id,
                    "subscription_id": target_id,
                    "channel": channel,
                    "message_id": row["id"],
                    "payload": json.dumps(payload, ensure_ascii=False, sort_keys=True),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if deliveries:
        await session.execute(insert(WebhookDelivery.__table__), deliveries)  # type: ignore[attr-defined]
    return [str(r["id"]) for r in rows]
