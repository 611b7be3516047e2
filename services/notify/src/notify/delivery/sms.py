"""SMS through a gateway adapter (httpx). Texts never contain names: a guardian is told that a document
(title, number, issuer) waits for them. Transient gateway errors are retried a few times at once."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.jurisdiction import ensure_within
from baoxue.auth.principal import Principal
from baoxue.contracts.notify import NoticeDelivered
from baoxue.errors import NotFound, Problem
from baoxue.pii.masking import mask_phone
from baoxue.service import ServiceContext
from notify.delivery.models import SmsMessage
from notify.documents import repository as documents
from notify.settings import NotifySettings

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
SIGN = "山亭区控辍保学"
ATTEMPTS = 3


def phone_aad(message_id: str) -> bytes:
    """Associated data of ``sms_messages.phone_enc`` (also declared for key rotation in notify.pii_columns)."""
    return f"sms_messages:{message_id}".encode()


class SmsGateway:
    """The adapter: one POST per message; returns the gateway's message id or raises SmsFailed."""

    def __init__(self, base_url: str, api_key: str, client: httpx.AsyncClient) -> None:
        self.base_url, self.api_key, self.client = base_url.rstrip("/"), api_key, client

    async def send(self, *, to: str, text: str) -> str:
        response = await self.client.post(
            f"{self.base_url}/v1/messages",
            json={"to": to, "sign": SIGN, "text": text},
            headers={"X-Api-Key": self.api_key},
        )
        if response.status_code in (200, 201, 202):
            return str(response.json()["message_id"])
        raise SmsFailed(f"http_{response.status_code}", transient=response.status_code >= 500)


class SmsFailed(Exception):
    def __init__(self, code: str, *, transient: bool) -> None:
        super().__init__(code)
        self.code, self.transient = code, transient


async def send_document_sms(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    document_id: str,
    phone: str,
    client: httpx.AsyncClient | None = None,
) -> SmsMessage:
    """Text a guardian that a document waits for them; the phone is kept encrypted and shown masked.
    A message the gateway accepted publishes NoticeDelivered (sms); a send that failed after the retries
    is recorded with status ``failed`` and its error code. 503 ``sms_gateway_unconfigured`` without a
    gateway."""
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
    sms = SmsMessage(
        id=message_id,
        document_id=doc.id,
        phone_masked=mask_phone(phone),
        text=text,
        status="failed",
        phone_enc=ctx.cipher.encrypt(phone, associated_data=phone_aad(message_id)),
        sent_by=principal.subject,
    )
    own = client is None
    http = client or httpx.AsyncClient(timeout=settings.webhook_timeout_seconds)
    gateway = SmsGateway(settings.sms_gateway_url, settings.sms_gateway_key, http)
    try:
        for _ in range(ATTEMPTS):
            sms.attempts += 1
            try:
                sms.gateway_id = await gateway.send(to=phone, text=text)
                sms.status, sms.last_error = "accepted", None
                break
            except SmsFailed as exc:
                sms.last_error = exc.code
                if not exc.transient:
                    break
            except httpx.HTTPError as exc:
                sms.last_error = type(exc).__name__
    finally:
        if own:
            await http.aclose()
    session.add(sms)
    await session.flush()
    if sms.status == "accepted":
        await ctx.outbox.add(
            session,
            NoticeDelivered(
                notice_id=doc.id,
                number=doc.number,
                kind=doc.kind,
                issuing_org=doc.issuing_org,
                recipient_org=doc.recipient_org,
                case_id=doc.case_id,
                channel="sms",
            ),
            subject=doc.id,
            sequence=2,
        )
    return sms
