"""Inbox messages per organisation, webhook subscriptions, and the webhook delivery log."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Index, Integer, String, Text
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from notify.database import NotifyModel

MESSAGE_KINDS = ("reminder", "lapse", "notice", "escalation", "alert", "referral", "bulletin")


class Message(NotifyModel, table=True):
    """One item in an organisation's inbox. Texts carry codes and surrogate ids, never personal data."""

    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_recipient_created", "recipient_org", "created_at", "id"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    recipient_org: str = Field(max_length=20)
    kind: str = Field(max_length=20)
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    ref_type: str | None = Field(default=None, max_length=30)
    ref_id: str | None = Field(default=None, max_length=80)
    action_required: bool = False
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    read_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    read_by: str | None = Field(default=None, max_length=80)
    acknowledged_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    acknowledged_by: str | None = Field(default=None, max_length=80)


class WebhookSubscription(NotifyModel, table=True):
    """Another government system that wants notify's notices pushed to it, signed with its secret."""

    __tablename__ = "webhook_subscriptions"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    org: str = Field(max_length=20, description="The organisation whose notices are pushed.")
    url: str = Field(max_length=500)
    secret_enc: str = Field(sa_column=Column(Text, nullable=False), description="ctx.cipher-encrypted secret")
    kinds: str = Field(default="", max_length=400, description="Comma-separated message kinds; empty = all")
    active: bool = True
    created_by: str = Field(max_length=80)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class EmailRecipient(NotifyModel, table=True):
    """An organisation's contact address for email, kept by the bureau (stored encrypted, shown masked)."""

    __tablename__ = "email_recipients"
    __table_args__ = (Index("ix_email_recipients_org", "org", "active"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    org: str = Field(max_length=20, description="The organisation whose messages are emailed.")
    address_enc: str = Field(
        sa_column=Column(Text, nullable=False), description="ctx.cipher-encrypted address"
    )
    address_masked: str = Field(max_length=260)
    kinds: str = Field(default="", max_length=400, description="Comma-separated message kinds; empty = all")
    active: bool = True
    created_by: str = Field(max_length=80)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class WebhookDelivery(NotifyModel, table=True):
    """One payload to one recipient — a webhook subscription, an email recipient (``channel`` ``email``)
    or a guardian's phone (``sms``: the SMS message, same id) — retried with backoff until delivered or
    dead-lettered. A worker claims it with a lease (``lease_owner``, ``leased_until``) in a short
    transaction and sends outside any transaction; another worker skips it until the lease expires."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    subscription_id: str = Field(
        max_length=36, index=True, description="webhook subscription, email recipient or SMS message"
    )
    channel: str = Field(
        default="webhook",
        sa_column=Column(String(10), nullable=False, default="webhook", server_default="webhook"),
        description="webhook | email | sms",
    )
    message_id: str = Field(max_length=36, description="inbox message (sms: the document)")
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=12, description="pending | delivered | dead")
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    next_attempt_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False)
    )
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=200)
    lease_owner: str | None = Field(default=None, max_length=36, description="the claiming worker's token")
    leased_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    delivered_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class WebhookAttempt(NotifyModel, table=True):
    """The delivery log: every attempt with its outcome (no payload, no secret)."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    delivery_id: str = Field(max_length=36, index=True)
    attempt: int
    at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=200)
    duration_ms: int = 0


class SmsMessage(NotifyModel, table=True):
    """A text message about a document to a guardian's phone (the number is stored encrypted), sent by the
    delivery queue (``webhook_deliveries`` row of the same id, channel ``sms``)."""

    __tablename__ = "sms_messages"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    document_id: str = Field(max_length=36, index=True)
    phone_enc: str = Field(sa_column=Column(Text, nullable=False))
    phone_masked: str = Field(max_length=20)
    text: str = Field(max_length=500, description="No names: the document's title, number and issuer")
    status: str = Field(max_length=12, description="pending | accepted | failed (dead-lettered)")
    gateway_id: str | None = Field(default=None, max_length=80)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=80)
    sent_by: str = Field(max_length=80)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
