"""SMS on the delivery queue, against the gateway simulator over real HTTP: queued with the request,
attempted once at once, retried with exponential backoff (not at once), dead-lettered after the limit,
replayable, with a visible status and an attempt log."""

from __future__ import annotations

import datetime as dt
import json
import logging

from sqlalchemy import select

from baoxue.db import utcnow
from baoxue.fakes.sms_gateway import create_app
from notify.delivery.models import SmsMessage, WebhookAttempt, WebhookDelivery
from notify.delivery.webhooks import deliver_due
from tests.notify.conftest import BUREAU, SCHOOL_A, SCHOOL_B, start_notify

LETTER = {"kind": "parent_letter", "fields": {"case_ref": "c-0042"}, "addressee": "李四"}
PHONE = "13800001234"


async def _letter(svc, school) -> dict:
    doc = await svc.client.post("/v1/documents", json=LETTER, headers=school)
    assert doc.status_code == 201, doc.text
    return doc.json()


async def _attempts(svc, delivery_id) -> list[WebhookAttempt]:
    async with svc.ctx.db.transaction() as s:
        rows = await s.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempt)
        )
        return list(rows.scalars())


async def _sms_notices(svc) -> list[dict]:
    table = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        envelopes = [json.loads(r) for r in (await s.execute(select(table.c.envelope))).scalars()]
    return [
        e["data"]
        for e in envelopes
        if e["type"].endswith("notice.delivered.v1") and e["data"]["channel"] == "sms"
    ]


async def test_a_failed_text_is_retried_with_backoff_not_at_once_and_the_number_is_kept_encrypted(
    start_service, tokens, http_server, caplog
):
    caplog.set_level(logging.DEBUG)
    gateway = create_app("test-key", fail_first=2)
    url = await http_server(gateway)
    svc = await start_notify(
        start_service, sms_gateway_url=url, sms_gateway_key="test-key", webhook_backoff_seconds=30
    )
    school = tokens.headers("school", SCHOOL_A)
    doc = await _letter(svc, school)

    bad = await svc.client.post(
        f"/v1/documents/{doc['id']}/sms", json={"phone": "12345678901"}, headers=school
    )
    assert bad.status_code == 422 and bad.json()["code"] == "phone_invalid" and "12345678901" not in bad.text
    before = utcnow()
    sent = await svc.client.post(
        f"/v1/documents/{doc['id']}/sms", json={"phone": "138 0000 1234"}, headers=school
    )
    after = utcnow()
    assert sent.status_code == 201, sent.text
    body = sent.json()
    # The first attempt was made at once and refused (503): queued again, 30 s later — not retried now.
    assert (body["status"], body["attempts"], body["last_error"]) == ("pending", 1, "http_503")
    assert body["phone"] == "138****1234" and PHONE not in sent.text
    first_retry = dt.datetime.fromisoformat(body["next_attempt_at"])
    assert before + dt.timedelta(seconds=30) <= first_retry <= after + dt.timedelta(seconds=30)
    assert gateway.state.gateway.requests == 1
    assert await deliver_due(svc.ctx) == 0  # not due yet
    assert gateway.state.gateway.requests == 1

    # Due after the backoff (the claim is told the time): refused again, the next delay doubles (60 s).
    before = utcnow()
    assert await deliver_due(svc.ctx, now=first_retry) == 1
    [listed] = (await svc.client.get(f"/v1/documents/{doc['id']}/sms", headers=school)).json()
    assert (listed["status"], listed["attempts"]) == ("pending", 2)
    second_retry = dt.datetime.fromisoformat(listed["next_attempt_at"])
    assert second_retry >= before + dt.timedelta(seconds=60)
    assert await deliver_due(svc.ctx, now=second_retry) == 1
    [listed] = (await svc.client.get(f"/v1/documents/{doc['id']}/sms", headers=school)).json()
    assert (listed["status"], listed["attempts"], listed["next_attempt_at"]) == ("accepted", 3, None)
    assert await deliver_due(svc.ctx, now=second_retry + dt.timedelta(days=1)) == 0  # sent once

    [message] = gateway.state.gateway.messages
    assert message["to"] == PHONE and doc["number"] in message["text"] and "李四" not in message["text"]
    assert [(a.attempt, a.status_code, a.error) for a in await _attempts(svc, body["id"])] == [
        (1, 503, "http_503"),
        (2, 503, "http_503"),
        (3, 202, None),
    ]
    log = (
        await svc.client.get(
            "/v1/webhook-deliveries", params={"channel": "sms"}, headers=tokens.headers("bureau", BUREAU)
        )
    ).json()["items"]
    assert [(d["id"], d["status"], d["attempts"], d["message_id"]) for d in log] == [
        (body["id"], "delivered", 3, doc["id"])
    ]
    assert [n["notice_id"] for n in await _sms_notices(svc)] == [doc["id"]]
    # The number: encrypted at rest, in no delivery payload, no log line, no listing.
    async with svc.ctx.db.transaction() as s:
        row = (await s.execute(select(SmsMessage))).scalar_one()
        delivery = await s.get(WebhookDelivery, row.id)
    assert PHONE not in row.phone_enc and delivery is not None and PHONE not in delivery.payload
    assert svc.ctx.cipher.decrypt(row.phone_enc, associated_data=f"sms_messages:{row.id}".encode()) == PHONE
    assert PHONE not in caplog.text and "138 0000 1234" not in caplog.text
    # Another school does not see the document's texts.
    other = await svc.client.get(f"/v1/documents/{doc['id']}/sms", headers=tokens.headers("school", SCHOOL_B))
    assert other.status_code == 404


async def test_a_text_dead_lettered_after_the_last_attempt_can_be_replayed(
    start_service, tokens, http_server
):
    gateway = create_app("test-key", fail_first=3)
    url = await http_server(gateway)
    svc = await start_notify(
        start_service,
        sms_gateway_url=url,
        sms_gateway_key="test-key",
        webhook_backoff_seconds=0,
        webhook_max_attempts=3,
    )
    school, bureau = tokens.headers("school", SCHOOL_A), tokens.headers("bureau", BUREAU)
    doc = await _letter(svc, school)
    sent = (
        await svc.client.post(f"/v1/documents/{doc['id']}/sms", json={"phone": PHONE}, headers=school)
    ).json()
    assert (sent["status"], sent["attempts"]) == ("pending", 1)
    for _ in range(4):
        await deliver_due(svc.ctx)
    assert gateway.state.gateway.requests == 3 and not gateway.state.gateway.messages
    [listed] = (await svc.client.get(f"/v1/documents/{doc['id']}/sms", headers=school)).json()
    assert (listed["status"], listed["attempts"], listed["last_error"]) == ("failed", 3, "http_503")
    dead = (
        await svc.client.get(
            "/v1/webhook-deliveries", params={"channel": "sms", "status": "dead"}, headers=bureau
        )
    ).json()["items"]
    assert [d["id"] for d in dead] == [sent["id"]]
    assert await _sms_notices(svc) == []

    replay = await svc.client.post(f"/v1/webhook-deliveries/{sent['id']}/replay", headers=bureau)
    assert replay.status_code == 200 and replay.json()["status"] == "pending"
    [listed] = (await svc.client.get(f"/v1/documents/{doc['id']}/sms", headers=school)).json()
    assert listed["status"] == "pending"
    assert await deliver_due(svc.ctx) == 1
    [listed] = (await svc.client.get(f"/v1/documents/{doc['id']}/sms", headers=school)).json()
    assert (listed["status"], listed["attempts"]) == ("accepted", 1)
    assert len(gateway.state.gateway.messages) == 1
    assert [n["notice_id"] for n in await _sms_notices(svc)] == [doc["id"]]


async def test_a_text_the_gateway_refuses_fails_at_once(start_service, tokens, http_server):
    url = await http_server(create_app("right-key"))
    svc = await start_notify(start_service, sms_gateway_url=url, sms_gateway_key="wrong-key")
    school = tokens.headers("school", SCHOOL_A)
    doc = await _letter(svc, school)
    sent = await svc.client.post(f"/v1/documents/{doc['id']}/sms", json={"phone": PHONE}, headers=school)
    assert sent.status_code == 201
    assert (sent.json()["status"], sent.json()["attempts"], sent.json()["last_error"]) == (
        "failed",
        1,
        "http_401",
    )
    assert sent.json()["next_attempt_at"] is None
    assert await deliver_due(svc.ctx, now=utcnow() + dt.timedelta(days=1)) == 0
