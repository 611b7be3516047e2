"""Outbox → NATS → consumer while the test's own nats-server is stopped and started again and again.

CI size: 3,000 events and 5 restarts. ``make chaos`` sets CHAOS_EVENTS=30000 CHAOS_RESTARTS=20.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest

from baoxue.events.bus import EventBus
from baoxue.events.consumer import ConsumerRunner, Subscription
from baoxue.events.relay import OutboxRelay

from .conftest import ChaosHappened, check_history, effect_handler

EVENTS = int(os.environ.get("CHAOS_EVENTS", "3000"))
RESTARTS = int(os.environ.get("CHAOS_RESTARTS", "5"))


@pytest.mark.slow
async def test_events_survive_repeated_broker_restarts(probe, event_namespace, nats_server_factory):
    server = nats_server_factory()
    rng = random.Random(2026)
    publisher = EventBus(server.url, namespace=event_namespace, client_name="chaos-pub")
    subscriber = EventBus(server.url, namespace=event_namespace, client_name="chaos-sub")
    await publisher.connect()
    await subscriber.connect()
    await publisher.ensure_streams(("registry",))
    relay = OutboxRelay(
        probe.db, probe.tables, publisher, _outbox(probe), batch_size=200, publish_timeout=2.0
    )
    runner = ConsumerRunner(
        "chaos",
        probe.db,
        probe.tables,
        subscriber,
        [Subscription("registry", {ChaosHappened: effect_handler(probe.effects)})],
        max_deliver=1000,
        ack_wait=2.0,
        batch=200,
    )
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(runner.run())]
    started = time.monotonic()
    faults = 0
    try:
        chunk = max(1, EVENTS // (RESTARTS + 1))
        written = 0
        for restart in range(RESTARTS + 1):
            upto = EVENTS if restart == RESTARTS else written + chunk
            for start in range(written, upto, 500):
                await probe.write(range(start, min(upto, start + 500)))
            written = upto
            if restart == RESTARTS:
                break
            await asyncio.sleep(rng.uniform(0.2, 1.0))  # let some of it flow, then pull the plug
            if rng.random() < 0.5:
                await asyncio.to_thread(server.stop)
            else:
                await asyncio.to_thread(server.kill)  # SIGKILL: a crash, not a shutdown
            faults += 1
            await probe.write(range(written, written + 50))  # written while the broker is away
            written += 50
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            await asyncio.to_thread(server.start)
        expected = range(written)
        deadline = time.monotonic() + 60 + written / 100
        while await probe.count() < written and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # time for a straggling redelivery to (not) apply twice
        history = check_history(expected, await probe.effects_of())
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await publisher.close()
        await subscriber.close()
    elapsed = time.monotonic() - started
    print(
        f"nats restarts: {history} faults={faults} reconnects={subscriber.generation} "
        f"inbox duplicates={runner.duplicates} in {elapsed:.0f}s"
    )
    assert faults == RESTARTS and subscriber.generation >= 1
    assert history["lost"] == history["duplicates"] == history["unexpected"] == 0, history


def _outbox(probe):
    from baoxue.events.outbox import Outbox

    return Outbox(probe.tables)
