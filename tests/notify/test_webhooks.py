"""Webhooks: a receiver failing three times then succeeding gets the delivery once, validly signed."""

from __future__ import annotations

import json

from sqlalchemy import select

from baoxue.fakes.webhook_receiver import create_app
from notify.delivery.models import WebhookAttempt
from notify.delivery.webhooks import deliver_due, sign, verify
from tests.notify.conftest import BUREAU, JUSTICE, POLICE, POVERTY, start_notify

SECRET = "a-long-random-shared-secret"


def test_signature_round_trip_and_tamper():
    body = b'{"a": 1}'
    header = sign(SECRET, 1_800_000_000, body)
    assert verify(SECRET, header, body, now=1_800_000_010)
    assert not verify(SECRET, header, body + b" ", now=1_800_000_010)
    assert not verify("another-secret-of-16+", header, body, now=1_800_000_010)
    assert not verify(SECRET, header, body, now=1_800_009_999)  # too old


async def test_receiver_failing_three_times_then_succeeding_gets_it_once(start_service, tokens, http_server):
    svc = await start_notify(start_service, webhook_backoff_seconds=0, webhook_max_attempts=6)
    receiver_app = create_app(SECRET, fail_first=3)
    url = await http_server(receiver_app)
    bureau = tokens.headers("bureau", BUREAU)
    sub = await svc.client.post(
        "/v1/webhooks",
        json={"org": POVERTY, "url": f"{url}/hook", "secret": SECRET, "kinds": ["notice"]},
        headers=bureau,
    )
    assert sub.status_code == 201, sub.text
    assert "secret" not in sub.json()
    notice = await svc.client.post(
        "/v1/documents",
        json={
            "kind": "hukou_cleanup_notice",
            "fields": {"period": "2026-09", "total": "3"},
            "recipient_org": POVERTY,
        },
        headers=tokens.headers("dept_police", POLICE),
    )
    assert notice.status_code == 201
    # A notice to another organisation is not pushed to this subscriber.
    await svc.client.post(
        "/v1/documents",
        json={
            "kind": "hukou_cleanup_notice",
            "fields": {"period": "2026-09", "total": "3"},
            "recipient_org": JUSTICE,
        },
        headers=tokens.headers("dept_police", POLICE),
    )

    for _ in range(6):
        await deliver_due(svc.ctx)
    state = receiver_app.state.receiver
    assert state.requests == 4 and state.rejected_signatures == 0
    assert len(state.accepted) == 1
    payload = next(iter(state.accepted.values()))
    assert (
        payload["ref_id"] == notice.json()["id"] and payload["org"] == POVERTY and payload["kind"] == "notice"
    )

    log = (await svc.client.get("/v1/webhook-deliveries", headers=bureau)).json()["items"]
    assert len(log) == 1 and log[0]["status"] == "delivered" and log[0]["attempts"] == 4
    async with svc.ctx.db.transaction() as s:
        attempts = list((await s.execute(select(WebhookAttempt).order_by(WebhookAttempt.attempt))).scalars())
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 503), (2, 503), (3, 503), (4, 200)]
    table = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        envelopes = [json.loads(r) for r in (await s.execute(select(table.c.envelope))).scalars()]
    channels = [e["data"].get("channel") for e in envelopes if e["type"].endswith("notice.delivered.v1")]
    assert sorted(channels) == ["inbox", "inbox", "webhook"]


async def test_deliveries_dead_letter_after_the_last_attempt_and_can_be_replayed(
    start_service, tokens, http_server
):
    svc = await start_notify(start_service, webhook_backoff_seconds=0, webhook_max_attempts=2)
    receiver_app = create_app(SECRET, fail_first=2)
    url = await http_server(receiver_app)
    bureau = tokens.headers("bureau", BUREAU)
    await svc.client.post(
        "/v1/webhooks", json={"org": POVERTY, "url": f"{url}/hook", "secret": SECRET}, headers=bureau
    )
    await svc.client.post(
        "/v1/documents",
        json={
            "kind": "hukou_cleanup_notice",
            "fields": {"period": "2026-09", "total": "3"},
            "recipient_org": POVERTY,
        },
        headers=tokens.headers("dept_police", POLICE),
    )
    for _ in range(4):
        await deliver_due(svc.ctx)
    dead = (await svc.client.get("/v1/webhook-deliveries", params={"status": "dead"}, headers=bureau)).json()[
        "items"
    ]
    assert len(dead) == 1 and dead[0]["attempts"] == 2 and dead[0]["last_error"] == "http_503"
    replay = await svc.client.post(f"/v1/webhook-deliveries/{dead[0]['id']}/replay", headers=bureau)
    assert replay.status_code == 200 and replay.json()["status"] == "pending"
    await deliver_due(svc.ctx)
    assert len(receiver_app.state.receiver.accepted) == 1
    again = await svc.client.post(f"/v1/webhook-deliveries/{dead[0]['id']}/replay", headers=bureau)
    assert again.status_code == 409 and again.json()["code"] == "delivery_not_dead"
