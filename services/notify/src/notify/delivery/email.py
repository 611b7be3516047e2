"""Email over SMTP (aiosmtplib): the adapter and the Chinese message built from an inbox message.

Organisations receive email when the bureau registered a contact address for them
(``POST /v1/email-recipients``; the address is stored encrypted and shown masked). Every inbox message
to such an organisation queues one delivery on the delivery queue (``notify.delivery.queue``,
``webhook_deliveries`` with ``channel = 'email'``): retries with exponential backoff, dead letters after
the last attempt, replay.

A 4xx reply or a network error is transient (retried); a 5xx reply is permanent (dead-lettered at once).
Logs and the delivery log hold SMTP reply codes only — never an address, a credential or the text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.db import utcnow
from baoxue.service import ServiceContext
from notify.delivery.models import EmailRecipient, WebhookDelivery
from notify.delivery.queue import Outcome, Send, Transport, outcome_now
from notify.settings import NotifySettings

SIGNATURE = "山亭区控辍保学工作平台"
_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+")


def address_aad(recipient_id: str) -> bytes:
    """Associated data of ``email_recipients.address_enc``."""
    return f"email_recipients:{recipient_id}".encode()


def valid_address(address: str) -> bool:
    return bool(_ADDRESS.fullmatch(address)) and len(address) <= 254


def mask_address(address: str) -> str:
    """``zhangsan@example.gov.cn`` → ``z***@example.gov.cn`` (for lists and logs of the bureau)."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


@dataclass(frozen=True)
class EmailFailed(Exception):
    """A send that did not go through: ``code`` is ``smtp_<reply code>`` or the exception's type."""

    code: str
    transient: bool
    reply: int | None = None


def compose(
    *, settings: NotifySettings, to: str, recipient_name: str, payload: dict[str, Any], delivery_id: str
) -> EmailMessage:
    """The email for one inbox message: UTF-8 plain text, RFC 2047 encoded Subject and display names
    (the ``email`` package's default policy encodes non-ASCII headers)."""
    message = EmailMessage()
    message["From"] = formataddr((settings.smtp_sender_name, settings.smtp_sender or ""))
    message["To"] = formataddr((recipient_name, to))
    message["Subject"] = f"【{SIGNATURE}】{payload['title']}"
    message["Date"] = format_datetime(utcnow())
    # The same on every attempt (make_msgid adds the time and a random number): a receiver that got the
    # message before a lost reply recognises the repeat.
    message["Message-ID"] = f"<{delivery_id}@baoxue.notify>"
    message["X-Baoxue-Delivery"] = delivery_id
    lines = [
        f"{recipient_name}：",
        "",
        f"您单位有一条新的{_KIND_LABELS.get(payload['kind'], '消息')}：",
        "",
        f"  {payload['title']}",
    ]
    if payload.get("body"):
        lines += [f"  {payload['body']}"]
    if payload.get("action_required"):
        lines += ["", "此事项需要您单位办理，请及时登录平台处理并回执。"]
    lines += [
        "",
        f"消息编号：{payload['message_id']}",
        "",
        "本邮件由系统自动发送，请勿直接回复。",
        SIGNATURE,
    ]
    message.set_content("\n".join(lines), charset="utf-8")
    return message


_KIND_LABELS = {
    "reminder": "到期提醒",
    "lapse": "逾期通知",
    "notice": "文书通知",
    "escalation": "督办通知",
    "alert": "预警",
    "referral": "移送事项",
    "bulletin": "通报",
}


class SmtpMailer:
    """The adapter: one connection per message, security and credentials from the settings."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host and self.settings.smtp_sender)

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=password,
                use_tls=s.smtp_security == "tls",
                start_tls=s.smtp_security == "starttls",
                cert_bundle=str(s.smtp_ca_file) if s.smtp_ca_file else None,
                timeout=s.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            code = min(codes) if codes else 0
            raise EmailFailed(f"smtp_{code}", transient=400 <= code < 500, reply=code) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise EmailFailed(f"smtp_{exc.code}", transient=exc.code < 500, reply=exc.code) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise EmailFailed(type(exc).__name__, transient=True) from None


async def prepare_email(
    session: AsyncSession, ctx: ServiceContext, delivery: WebhookDelivery, transport: Transport
) -> Send:
    """The delivery queue's email channel: the recipient's address decrypted and the mail composed inside
    the claim's transaction; the send (one SMTP connection) after it. The attempt log keeps the reply
    code (``last_status``) and ``smtp_<code>``; a 5xx reply, an inactive recipient are permanent; a
    missing configuration (``smtp_unconfigured``) is retried."""
    recipient = await session.get(EmailRecipient, delivery.subscription_id)
    mailer = transport.mailer
    if recipient is None or not recipient.active:
        return outcome_now(Outcome(error="recipient_inactive", permanent=True))
    if not mailer.configured:
        return outcome_now(Outcome(error="smtp_unconfigured"))
    address = ctx.cipher.decrypt(recipient.address_enc, associated_data=address_aad(recipient.id))
    org = ctx.directory.get(recipient.org)
    message = compose(
        settings=mailer.settings,
        to=address,
        recipient_name=org.name_zh if org is not None else recipient.org,
        payload=json.loads(delivery.payload),
        delivery_id=delivery.id,
    )

    async def send() -> Outcome:
        try:
            await mailer.send(message)
        except EmailFailed as exc:
            return Outcome(status_code=exc.reply, error=exc.code, permanent=not exc.transient)
        return Outcome(status_code=250)

    return send
