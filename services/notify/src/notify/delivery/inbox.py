"""Posting to inboxes (used by every domain) and fanning messages out to webhook subscribers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.db import utcnow
from notify.delivery.models import Message, WebhookDelivery, WebhookSubscription


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
    deliveries = []
    for row in rows:
        for sub in subscriptions:
            kinds = {k for k in sub.kinds.split(",") if k}
            if sub.org != row["recipient_org"] or (kinds and row["kind"] not in kinds):
                continue
            payload = {
                "delivery_id": None,
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
            delivery_id = str(uuid.uuid4())
            payload["delivery_id"] = delivery_id
            deliveries.append(
                {
                    "id": delivery_id,
                    "subscription_id": sub.id,
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
