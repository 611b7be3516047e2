"""The delivery queue: a claimed delivery is leased, sent outside any transaction and recorded; a worker
that dies after claiming loses nothing, two workers never send one delivery twice."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from baoxue.db import utcnow
from baoxue.fakes.webhook_receiver import create_app
from baoxue.testing.plugin import eventually
from notify.delivery import queue
from notify.delivery.email import SmtpMailer
from notify.delivery.models import WebhookAttempt, WebhookDelivery
from notify.delivery.webhooks import PREPARERS, deliver_due
from tests.notify.conftest import BUREAU, POLICE, POVERTY, start_notify

SECRET = "a-long-random-shared-secret"
NOTICE = {
    "kind": "hukou_cleanup_notice",
    "fields": {"period": "2026-09", "total": "3"},
    "recipient_org": POVERTY,
}


async def _subscribe_and_notify(svc, tokens, url: str, notices: int = 1) -> None:
    sub = await svc.client.post(
        "/v1/webhooks",
        json={"org": POVERTY, "url": url, "secret": SECRET, "kinds": ["notice"]},
        headers=tokens.headers("bureau", BUREAU),
    )
    assert sub.status_code == 201, sub.text
    for _ in range(notices):
        r = await svc.client.post("/v1/documents", json=NOTICE, headers=tokens.headers("dept_police", POLICE))
        assert r.status_code == 201, r.text


async def _deliveries(svc) -> list[WebhookDelivery]:
    async with svc.ctx.db.transaction() as s:
        return list((await s.execute(select(WebhookDelivery).order_by(WebhookDelivery.id))).scalars())


async def test_a_worker_that_died_after_claiming_loses_nothing(start_service, tokens, http_server):
    svc = await start_notify(start_service, webhook_backoff_seconds=0, delivery_lease_seconds=120)
    receiver = create_app(SECRET)
    await _subscribe_and_notify(svc, tokens, f"{await http_server(receiver)}/hook")
    # A worker claims the delivery, sends it, and dies before recording the outcome.
    async with httpx.AsyncClient() as http:
        transport = queue.Transport(http=http, mailer=SmtpMailer(svc.ctx.settings))
        [job] = await queue.claim(svc.ctx, transport=transport, preparers=PREPARERS)
        assert (await job.send()).error is None
    [delivery] = await _deliveries(svc)
    assert delivery.status == "pending" and delivery.lease_owner == job.owner and delivery.attempts == 0
    assert receiver.state.receiver.requests == 1

    # While its lease runs, no other worker takes the delivery.
    assert await deliver_due(svc.ctx) == 0
    assert receiver.state.receiver.requests == 1
    # Once it has expired, another worker sends it again: the receiver recognises the repeat by the
    # delivery id (the same X-Baoxue-Delivery), so it holds the message once.
    assert await deliver_due(svc.ctx, now=job.leased_until + dt.timedelta(seconds=1)) == 1
    assert receiver.state.receiver.requests == 2
    assert list(receiver.state.receiver.accepted) == [delivery.id]
    [delivery] = await _deliveries(svc)
    assert (delivery.status, delivery.attempts, delivery.lease_owner) == ("delivered", 1, None)

    # The dead worker's late outcome changes nothing: its lease is gone.
    assert await queue.record(svc.ctx, job, queue.Outcome(status_code=503, error="http_503")) is None
    [delivery] = await _deliveries(svc)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 1, None)
    async with svc.ctx.db.transaction() as s:
        attempts = list((await s.execute(select(WebhookAttempt))).scalars())
    assert [(a.attempt, a.status_code) for a in attempts] == [(1, 200)]


async def test_two_workers_never_send_one_delivery_twice_and_no_transaction_spans_a_send(
    start_service, tokens, http_server
):
    """The receiver holds every request until the test releases it: meanwhile a second worker finds
    nothing to send, and the delivery rows can be locked and written (no transaction of the first worker
    holds them)."""
    svc = await start_notify(start_service, webhook_backoff_seconds=0)
    gate, seen = asyncio.Event(), []

    async def hook(request: Request) -> JSONResponse:
        seen.append(request.headers["X-Baoxue-Delivery"])
        await gate.wait()
        return JSONResponse({"ok": True})

    url = await http_server(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
    await _subscribe_and_notify(svc, tokens, f"{url}/hook", notices=3)
    ids = [d.id for d in await _deliveries(svc)]
    assert len(ids) == 3

    first = asyncio.create_task(deliver_due(svc.ctx))
    try:

        async def all_on_the_wire() -> bool:
            return len(seen) == 3

        await eventually(all_on_the_wire)
        assert await deliver_due(svc.ctx) == 0  # the second worker: every delivery is leased
        table = WebhookDelivery.__table__
        async with svc.ctx.db.transaction() as s:
            if svc.ctx.db.dialect == "postgresql":  # NOWAIT: fails at once if a transaction locks a row
                locked = select(table.c.id).where(table.c.id.in_(ids)).with_for_update(nowait=True)
                assert len((await s.execute(locked)).all()) == 3
            written = await s.execute(
                update(table).where(table.c.id.in_(ids)).values(last_error=table.c.last_error)
            )
            assert written.rowcount == 3
        leases = {(d.lease_owner, d.status) for d in await _deliveries(svc)}
        assert len(leases) == 1 and next(iter(leases))[0] is not None
    finally:
        gate.set()
    assert await first == 3
    assert sorted(seen) == sorted(ids)  # each sent once
    assert {(d.status, d.attempts, d.lease_owner) for d in await _deliveries(svc)} == {("delivered", 1, None)}

    # Two workers at once over new deliveries: each delivery goes to exactly one of them.
    seen.clear()
    for _ in range(4):
        r = await svc.client.post("/v1/documents", json=NOTICE, headers=tokens.headers("dept_police", POLICE))
        assert r.status_code == 201
    counts = await asyncio.gather(deliver_due(svc.ctx), deliver_due(svc.ctx))
    assert sum(counts) == 4 and len(seen) == 4 and len(set(seen)) == 4
    assert await deliver_due(svc.ctx, now=utcnow() + dt.timedelta(days=1)) == 0
