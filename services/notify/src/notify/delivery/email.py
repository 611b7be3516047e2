"""Email over SMTP (aiosmtplib): the adapter and the Chinese message built from an inbox message.

Organisations receive email when the bureau registered a contact address for them
(``POST /v1/email-recipients``; the address is stored encrypted and shown masked). Every inbox message
to such an organisation queues one delivery on the same log as the webhooks (``webhook_deliveries`` with
``channel = 'email'``): retries with exponential backoff, dead letters after the last attempt, replay.

A 4xx reply or a network error is transient (retried); a 5xx reply is permanent (dead-lettered at once).
Logs and the delivery log hold SMTP reply codes only — never an address, a credential or the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

import aiosmtplib

from baoxue.db import utcnow
from notify.settings import NotifySettings

SIGNATURE = "山亭区控辍保学工作平台"
_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+")


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
    message["Message-ID"] = make_msgid(idstring=delivery_id, domain="baoxue.notify")
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
