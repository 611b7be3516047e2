"""Email over SMTP: against the aiosmtpd simulator over real TCP, on the webhooks' delivery log."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from baoxue.db import utcnow
from baoxue.fakes.smtp_server import SmtpServer
from notify.delivery.models import EmailRecipient, WebhookAttempt, WebhookDelivery
from notify.delivery.webhooks import deliver_due
from tests.notify.conftest import BUREAU, JUSTICE, POLICE, POVERTY, start_notify

ADDRESS = "fupinban-lianluo@example.gov.cn"
NOTICE = {
    "kind": "hukou_cleanup_notice",
    "fields": {"period": "2026-09", "total": "3"},
    "recipient_org": POVERTY,
}


@pytest_asyncio.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = await SmtpServer.start(credentials=("notify", "smtp-test-password"))
    try:
        yield server
    finally:
        await server.stop()


def _smtp_settings(server: SmtpServer, **extra: object) -> dict[str, object]:
    return {
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_security": "none",
        "smtp_username": "notify",
        "smtp_password": "smtp-test-password",
        "smtp_sender": "kongchuo@example.gov.cn",
        "webhook_backoff_seconds": 0,
    } | extra


async def _register_and_issue(svc, tokens) -> tuple[dict, dict]:
    bureau = tokens.headers("bureau", BUREAU)
    recipient = await svc.client.post(
        "/v1/email-recipients", json={"org": POVERTY, "address": ADDRESS}, headers=bureau
    )
    assert recipient.status_code == 201, recipient.text
    notice = await svc.client.post(
        "/v1/documents", json=NOTICE, headers=tokens.headers("dept_police", POLICE)
    )
    assert notice.status_code == 201, notice.text
    return recipient.json(), notice.json()


async def _email_log(svc, tokens, **params) -> list[dict]:
    response = await svc.client.get(
        "/v1/webhook-deliveries",
        params={"channel": "email", **params},
        headers=tokens.headers("bureau", BUREAU),
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_a_notice_is_emailed_once_in_chinese_and_the_address_is_kept_encrypted(
    start_service, tokens, smtp, caplog
):
    caplog.set_level(logging.DEBUG)
    svc = await start_notify(start_service, **_smtp_settings(smtp))
    recipient, notice = await _register_and_issue(svc, tokens)
    assert recipient["address"] == "f***@example.gov.cn" and ADDRESS not in json.dumps(recipient)
    # A notice to another organisation is not emailed to this address.
    other = await svc.client.post(
        "/v1/documents",
        json=NOTICE | {"recipient_org": JUSTICE},
        headers=tokens.headers("dept_police", POLICE),
    )
    assert other.status_code == 201

    assert await deliver_due(svc.ctx) == 1
    assert await deliver_due(svc.ctx) == 0  # delivered: nothing left to send
    [mail] = smtp.messages
    assert mail.rcpt_tos == (ADDRESS,) and mail.mail_from == "kongchuo@example.gov.cn"
    assert b"=?utf-8?" in mail.raw.lower()  # the Subject travels RFC 2047-encoded
    inbox = (await svc.client.get("/v1/inbox", headers=tokens.headers("dept_poverty", POVERTY))).json()[
        "items"
    ]
    assert len(inbox) == 1
    assert mail.subject == "【山亭区控辍保学工作平台】" + inbox[0]["title"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in inbox[0]["title"])  # the title is Chinese
    assert mail.message.get_content_charset() == "utf-8"
    assert "扶贫" in mail.message["To"] and "山亭区教育和体育局" in mail.message["From"]
    text = mail.text
    assert "您单位有一条新的文书通知" in text and inbox[0]["title"] in text
    assert f"消息编号：{inbox[0]['id']}" in text and notice["id"] in inbox[0]["ref_id"]

    [delivery] = await _email_log(svc, tokens)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1 and delivery["last_status"] == 250
    assert delivery["subscription_id"] == recipient["id"]
    async with svc.ctx.db.transaction() as s:
        row = (await s.execute(select(EmailRecipient))).scalar_one()
    assert ADDRESS not in row.address_enc
    assert "smtp-test-password" not in caplog.text and ADDRESS not in caplog.text
    table = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        envelopes = [json.loads(r) for r in (await s.execute(select(table.c.envelope))).scalars()]
    delivered = [e["data"] for e in envelopes if e["type"].endswith("notice.delivered.v1")]
    assert sorted(d["channel"] for d in delivered if d["recipient_org"] == POVERTY) == ["email", "inbox"]
    assert all(ADDRESS not in json.dumps(e) for e in envelopes)


async def test_a_repeated_send_carries_the_same_message_id(start_service, tokens, smtp):
    """A worker whose outcome was lost sends the delivery again after its lease: the receiver recognises
    the repeat by its Message-ID, derived from the delivery id and the same on every attempt."""
    svc = await start_notify(start_service, **_smtp_settings(smtp))
    await _register_and_issue(svc, tokens)
    assert await deliver_due(svc.ctx) == 1
    [delivery] = await _email_log(svc, tokens)
    async with svc.ctx.db.transaction() as s:  # as if the first worker had died before recording
        row = await s.get(WebhookDelivery, delivery["id"])
        row.status, row.next_attempt_at = "pending", utcnow()
    assert await deliver_due(svc.ctx) == 1
    first, second = smtp.messages
    assert first.message["Message-ID"] == second.message["Message-ID"] == f"<{delivery['id']}@baoxue.notify>"
    assert first.message["X-Baoxue-Delivery"] == delivery["id"]


async def test_a_server_failing_twice_then_accepting_gets_the_email_once(start_service, tokens, smtp):
    svc = await start_notify(start_service, **_smtp_settings(smtp, webhook_max_attempts=5))
    smtp.fail_next(2)
    await _register_and_issue(svc, tokens)
    for _ in range(5):
        await deliver_due(svc.ctx)
    assert smtp.transactions == 3 and len(smtp.messages) == 1
    [delivery] = await _email_log(svc, tokens)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    async with svc.ctx.db.transaction() as s:
        attempts = list((await s.execute(select(WebhookAttempt).order_by(WebhookAttempt.attempt))).scalars())
    assert [(a.attempt, a.status_code, a.error) for a in attempts] == [
        (1, 451, "smtp_451"),
        (2, 451, "smtp_451"),
        (3, 250, None),
    ]


async def test_a_server_that_keeps_refusing_ends_in_dead_letters_and_a_5xx_at_once(
    start_service, tokens, smtp
):
    svc = await start_notify(start_service, **_smtp_settings(smtp, webhook_max_attempts=3))
    smtp.fail_next(100)
    await _register_and_issue(svc, tokens)
    for _ in range(5):
        await deliver_due(svc.ctx)
    assert smtp.transactions == 3 and smtp.messages == []
    [dead] = await _email_log(svc, tokens, status="dead")
    assert dead["attempts"] == 3 and dead["last_error"] == "smtp_451"

    # A permanent refusal (5xx) is not retried; a replay after the fix delivers it.
    smtp.fail_next(1, permanent=True)
    await svc.client.post(
        "/v1/documents",
        json=NOTICE | {"fields": {"period": "2027-03", "total": "1"}},
        headers=tokens.headers("dept_police", POLICE),
    )
    await deliver_due(svc.ctx)
    await deliver_due(svc.ctx)
    dead = await _email_log(svc, tokens, status="dead")
    assert sorted((d["attempts"], d["last_error"]) for d in dead) == [(1, "smtp_554"), (3, "smtp_451")]
    bureau = tokens.headers("bureau", BUREAU)
    for d in dead:
        assert (
            await svc.client.post(f"/v1/webhook-deliveries/{d['id']}/replay", headers=bureau)
        ).status_code == 200
    await deliver_due(svc.ctx)
    assert len(smtp.messages) == 2


async def test_wrong_credentials_and_bad_addresses(start_service, tokens, smtp):
    svc = await start_notify(
        start_service, **_smtp_settings(smtp, smtp_password="not-the-password", webhook_max_attempts=2)
    )
    bureau = tokens.headers("bureau", BUREAU)
    bad = await svc.client.post(
        "/v1/email-recipients", json={"org": POVERTY, "address": "no-at-sign.example"}, headers=bureau
    )
    assert bad.status_code == 422 and bad.json()["code"] == "email_address_invalid"
    assert "no-at-sign" not in bad.text
    forbidden = await svc.client.post(
        "/v1/email-recipients",
        json={"org": POVERTY, "address": ADDRESS},
        headers=tokens.headers("dept_poverty", POVERTY),
    )
    assert forbidden.status_code == 403
    await _register_and_issue(svc, tokens)
    await deliver_due(svc.ctx)
    assert smtp.auth_failures >= 1 and smtp.messages == []  # PLAIN, then LOGIN
    [delivery] = await _email_log(svc, tokens)
    assert delivery["status"] == "dead" and delivery["last_error"] == "smtp_535"


def _tls_context(tmp_path) -> tuple[ssl.SSLContext, Path]:
    """A self-signed certificate for 127.0.0.1 (the client trusts it through NOTIFY_SMTP_CA_FILE)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.simulator.local")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_starttls_and_implicit_tls_with_credentials(start_service, tokens, tmp_path, security):
    context, ca_file = _tls_context(tmp_path)
    server = await SmtpServer.start(
        credentials=("notify", "smtp-test-password"), tls_context=context, security=security
    )
    try:
        settings = _smtp_settings(server, smtp_security=security, smtp_ca_file=str(ca_file))
        svc = await start_notify(start_service, **settings)
        await _register_and_issue(svc, tokens)
        await deliver_due(svc.ctx)
        assert len(server.messages) == 1 and server.auth_failures == 0
        [delivery] = await _email_log(svc, tokens)
        assert delivery["status"] == "delivered"
    finally:
        await server.stop()


async def test_a_relay_requiring_starttls_refuses_a_client_configured_without_it(
    start_service, tokens, tmp_path
):
    context, _ = _tls_context(tmp_path)
    server = await SmtpServer.start(credentials=("notify", "smtp-test-password"), tls_context=context)
    try:
        svc = await start_notify(start_service, **_smtp_settings(server, webhook_max_attempts=1))
        await _register_and_issue(svc, tokens)
        await deliver_due(svc.ctx)
        assert server.messages == []
        [delivery] = await _email_log(svc, tokens)
        # AUTH is not offered before STARTTLS: the client will not send credentials in clear.
        assert delivery["status"] == "dead" and delivery["last_error"] == "SMTPException"
        assert server.auth_failures == 0
    finally:
        await server.stop()
