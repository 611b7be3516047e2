"""Queries of the delivery domain."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from notify.delivery.models import EmailRecipient, Message, SmsMessage, WebhookDelivery, WebhookSubscription


async def inbox_page(
    session: AsyncSession,
    org: str,
    *,
    after: tuple[dt.datetime, str] | None,
    limit: int,
    unread: bool,
    kind: str | None,
) -> list[Message]:
    """The newest messages first; an organisation sees its own inbox only."""
    statement = select(Message).where(col(Message.recipient_org) == org)
    if unread:
        statement = statement.where(col(Message.read_at).is_(None))  # type: ignore[union-attr]
    if kind:
        statement = statement.where(col(Message.kind) == kind)
    if after is not None:
        at, ident = after
        statement = statement.where(
            (col(Message.created_at) < at) | ((col(Message.created_at) == at) & (col(Message.id) < ident))
        )
    statement = statement.order_by(col(Message.created_at).desc(), col(Message.id).desc()).limit(limit + 1)  # type: ignore[attr-defined]
    return list((await session.execute(statement)).scalars())


async def message(session: AsyncSession, message_id: str) -> Message | None:
    return await session.get(Message, message_id)


async def subscriptions(session: AsyncSession, *, after: str | None, limit: int) -> list[WebhookSubscription]:
    statement = select(WebhookSubscription)
    if after:
        statement = statement.where(col(WebhookSubscription.id) > after)
    return list(
        (await session.execute(statement.order_by(col(WebhookSubscription.id)).limit(limit + 1))).scalars()
    )


async def email_recipients(
    session: AsyncSession, *, org: str | None, after: str | None, limit: int
) -> list[EmailRecipient]:
    statement = select(EmailRecipient)
    if org:
        statement = statement.where(col(EmailRecipient.org) == org)
    if after:
        statement = statement.where(col(EmailRecipient.id) > after)
    return list(
        (await session.execute(statement.order_by(col(EmailRecipient.id)).limit(limit + 1))).scalars()
    )


async def deliveries(
    session: AsyncSession,
    *,
    subscription_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
    channel: str | None = None,
) -> list[WebhookDelivery]:
    statement = select(WebhookDelivery)
    if channel:
        statement = statement.where(col(WebhookDelivery.channel) == channel)
    if subscription_id:
        statement = statement.where(col(WebhookDelivery.subscription_id) == subscription_id)
    if status:
        statement = statement.where(col(WebhookDelivery.status) == status)
    if after:
        statement = statement.where(col(WebhookDelivery.id) > after)
    return list(
        (await session.execute(statement.order_by(col(WebhookDelivery.id)).limit(limit + 1))).scalars()
    )


async def sms_of_document(
    session: AsyncSession, document_id: str
) -> list[tuple[SmsMessage, WebhookDelivery | None]]:
    """A document's text messages, oldest first, each with its delivery (none for messages sent before the
    delivery queue carried SMS)."""
    statement = (
        select(SmsMessage, WebhookDelivery)
        .outerjoin(WebhookDelivery, col(WebhookDelivery.id) == col(SmsMessage.id))
        .where(col(SmsMessage.document_id) == document_id)
        .order_by(col(SmsMessage.created_at), col(SmsMessage.id))
    )
    return [(sms, delivery) for sms, delivery in (await session.execute(statement)).all()]
