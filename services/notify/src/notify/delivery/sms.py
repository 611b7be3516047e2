"""SMS through a gateway adapter (httpx), on the delivery queue (``notify.delivery.queue``) like webhooks
and email: queued with the request (``sms_messages`` + a ``webhook_deliveries`` row of the same id,
channel ``sms``), attempted once at once outside the request's transaction, then retried with
exponential backoff by the delivery loop and dead-lettered after ``NOTIFY_WEBHOOK_MAX_ATTEMPTS`` or a
permanent refusal (4xx). Texts never contain names: a guardian is told that a document (title, number,
issuer) waits for them. The phone is stored encrypted, shown masked, never logged."""

from __future__ import annotations

import json
import re
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.jurisdiction import ensure_within
from baoxue.auth.principal import Principal
from baoxue.db import utcnow
from baoxue.errors import NotFound, Problem
from baoxue.pii.masking import mask_phone
from baoxue.service import ServiceContext
from notify.delivery import repository as delivery_repository
from notify.delivery.models import SmsMessage, WebhookDelivery
from notify.delivery.queue import Outcome, Send, Transport, outcome_now
from notify.documents import repository as documents
from notify.settings import NotifySettings

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
SIGN = "山亭区控辍保学"


def phone_aad(message_id: str) -> bytes:
    """Associated data of ``sms_messages.phone_enc`` (also declared for key rotation in notify.pii_columns)."""
    return f"sms_messages:{message_id}".encode()


class SmsGateway:
    """The adapter: one POST per message; returns the gateway's message id or raises SmsFailed. The
    ``X-Baoxue-Delivery`` header (the SMS message's id, the same on every attempt) lets a gateway that
    supports it drop a repeat."""

    def __init__(self, base_url: str, api_key: str, client: httpx.AsyncClient) -> None:
        self.base_url, self.api_key, self.client = base_url.rstrip("/"), api_key, client

    async def send(self, *, to: str, text: str, reference: str) -> tuple[int, str]:
        response = await self.client.post(
            f"{self.base_url}/v1/messages",
            json={"to": to, "sign": SIGN, "text": text},
            headers={"X-Api-Key": self.api_key, "X-Baoxue-Delivery": reference},
        )
        if response.status_code in (200, 201, 202):
            return response.status_code, str(response.json()["message_id"])
        raise SmsFailed(
            f"http_{response.status_code}", transient=response.status_code >= 500, status=response.status_code
        )


class SmsFailed(Exception):
    def __init__(self, code: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(code)
        self.code, self.transient, self.status = code, transient, status


async def queue_document_sms(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    document_id: str,
    phone: str,
) -> SmsMessage:
    """Queue a text telling a guardian that a document waits for them (status ``pending``); the phone is
    kept encrypted and shown masked. 503 ``sms_gateway_unconfigured`` without a gateway."""
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    phone = re.sub(r"[\s-]", "", phone)
    if not _MOBILE.fullmatch(phone):
        raise Problem(
            "The phone number is not a mainland mobile number.",
            code="phone_invalid",
            status=422,
            errors=[{"field": "phone", "code": "invalid", "message": "11 digits starting with 1"}],
        )
    doc = await documents.get(session, document_id)
    if doc is None:
        raise NotFound("No such document.")
    ensure_within(principal, doc.issuing_org, doc.recipient_org, resource="document")
    if not settings.sms_gateway_url:
        raise Problem("No SMS gateway is configured.", code="sms_gateway_unconfigured", status=503)
    issuer = ctx.directory.get(doc.issuing_org)
    text = (
        f"您好，{issuer.name_zh if issuer else doc.issuing_org}向您发出《{doc.title}》（{doc.number}），"
        "请及时领取并按要求办理。"
    )
    message_id = str(uuid.uuid4())
    now = utcnow()
    sms = SmsMessage(
        id=message_id,
        document_id=doc.id,
        phone_masked=mask_phone(phone),
        text=text,
        status="pending",
        phone_enc=ctx.cipher.encrypt(phone, associated_data=phone_aad(message_id)),
        sent_by=principal.subject,
        created_at=now,
    )
    session.add(sms)
    session.add(
        WebhookDelivery(
            id=message_id,
            subscription_id=message_id,
            channel="sms",
            message_id=doc.id,
            payload=json.dumps({"sms_id": message_id, "document_id": doc.id, "number": doc.number}),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    await session.flush()
    return sms


async def document_sms(
    *, session: AsyncSession, principal: Principal, document_id: str
) -> list[tuple[SmsMessage, WebhookDelivery | None]]:
    """A document's text messages with their deliveries (the document's issuer or recipient; else 404)."""
    doc = await documents.get(session, document_id)
    if doc is None:
        raise NotFound("No such document.")
    ensure_within(principal, doc.issuing_org, doc.recipient_org, resource="document")
    return await delivery_repository.sms_of_document(session, document_id)


async def prepare_sms(
    session: AsyncSession, ctx: ServiceContext, delivery: WebhookDelivery, transport: Transport
) -> Send:
    """The delivery queue's SMS channel: the phone decrypted inside the claim's transaction, the gateway's
    POST after it. 2xx: accepted; 5xx or a network error: retried; 4xx (a wrong key, a refused number):
    permanent. Without a gateway configured: retried as ``sms_gateway_unconfigured``."""
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)
    sms = await session.get(SmsMessage, delivery.subscription_id)
    if sms is None:
        return outcome_now(Outcome(error="sms_message_missing", permanent=True))
    if not settings.sms_gateway_url:
        return outcome_now(Outcome(error="sms_gateway_unconfigured"))
    phone = ctx.cipher.decrypt(sms.phone_enc, associated_data=phone_aad(sms.id))
    gateway = SmsGateway(settings.sms_gateway_url, settings.sms_gateway_key, transport.http)
    text, reference = sms.text, sms.id

    async def send() -> Outcome:
        try:
            status, gateway_id = await gateway.send(to=phone, text=text, reference=reference)
        except SmsFailed as exc:
            return Outcome(status_code=exc.status, error=exc.code, permanent=not exc.transient)
        except httpx.HTTPError as exc:
            return Outcome(error=type(exc).__name__)
        return Outcome(status_code=status, reference=gateway_id)

    return send
