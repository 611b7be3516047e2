"""API models of the delivery domain."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class MessagePublic(BaseModel):
    id: str
    recipient_org: str
    kind: str
    title: str
    body: str
    ref_type: str | None
    ref_id: str | None
    action_required: bool
    created_at: dt.datetime
    read_at: dt.datetime | None
    acknowledged_at: dt.datetime | None


class WebhookCreate(BaseModel):
    """Subscribe a system to an organisation's messages. The secret signs every payload (HMAC-SHA256)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "org": "370406D03",
                    "url": "https://fupin.example.gov.cn/hooks/baoxue",
                    "secret": "a-long-random-shared-secret",
                    "kinds": ["notice", "referral"],
                }
            ]
        },
    )

    org: str = Field(max_length=20)
    url: HttpUrl
    secret: str = Field(min_length=16, max_length=200)
    kinds: list[str] = Field(default_factory=list, max_length=10)


class WebhookPublic(BaseModel):
    id: str
    org: str
    url: str
    kinds: list[str]
    active: bool
    created_at: dt.datetime


class EmailRecipientCreate(BaseModel):
    """An organisation's contact address: every inbox message to the organisation (of the listed kinds;
    none = all) is also emailed to it. Stored encrypted, shown masked, never logged."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"org": "370406D08", "address": "rsj-jiancha@example.gov.cn", "kinds": ["referral"]}]
        },
    )

    org: str = Field(max_length=20)
    address: str = Field(min_length=3, max_length=254)
    kinds: list[str] = Field(default_factory=list, max_length=10)


class EmailRecipientPublic(BaseModel):
    id: str
    org: str
    address: str = Field(description="masked")
    kinds: list[str]
    active: bool
    created_at: dt.datetime


class DeliveryPublic(BaseModel):
    id: str
    subscription_id: str = Field(
        description="The webhook subscription, the email recipient (channel email) or the SMS message (sms)"
    )
    channel: str = Field(description="webhook | email | sms")
    message_id: str = Field(description="The inbox message (sms: the document)")
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_status: int | None
    last_error: str | None
    delivered_at: dt.datetime | None


class SmsRequest(BaseModel):
    """A guardian's mobile number (stored encrypted, shown masked, never logged)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"phone": "13800001234"}]})

    phone: str = Field(min_length=11, max_length=20)


class SmsPublic(BaseModel):
    id: str = Field(description="Also the id of its delivery (GET /v1/webhook-deliveries?channel=sms)")
    document_id: str
    phone: str = Field(description="masked")
    text: str
    status: str = Field(
        description="pending (queued, retried with backoff) | accepted | failed (dead letter)"
    )
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None = Field(description="When the next attempt is due (pending only)")
    created_at: dt.datetime
