"""A poison event is dead-lettered after the delivery limit without holding up the rest, its record
carries no personal data, and after a fix the replay (what ``baoxue deadletters replay`` runs) applies
it exactly once."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.events.bus import EventBus
from baoxue.events.consumer import ConsumerRunner, ReceivedEvent, Subscription
from baoxue.events.outbox import Outbox
from baoxue.events.relay import OutboxRelay

from .conftest import ChaosHappened, check_history, effect_handler

_path = Path(__file__).resolve().parents[2] / "tools" / "security" / "pii_scan.py"
_spec = importlib.util.spec_from_file_location("pii_scan", _path)
assert _spec and _spec.loader
pii_scan = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("pii_scan", pii_scan)
_spec.loader.exec_module(pii_scan)

POISON = 13


async def test_poison_event_dead_lettered_then_replayed_once_after_a_fix(
    probe, baoxue_infra, event_namespace
):
    fixed = False
    apply = effect_handler(probe.effects)

    async def handler(session: AsyncSession, event: ReceivedEvent[ChaosHappened]) -> None:
        if event.data.n == POISON and not fixed:
            raise ConnectionError("downstream keeps failing for this event")
        await apply(session, event)

    bus = EventBus(baoxue_infra.nats_url, namespace=event_namespace, client_name="poison")
    await bus.connect()
    await bus.ensure_streams(("registry",))
    subs = [Subscription("registry", {ChaosHappened: handler})]
    runner = ConsumerRunner("poison", probe.db, probe.tables, bus, subs, max_deliver=3, ack_wait=2.0)
    await probe.write(range(50))
    await OutboxRelay(probe.db, probe.tables, bus, Outbox(probe.tables)).publish_pending()
    task = asyncio.create_task(runner.run())
    try:
        deadline = time.monotonic() + 40
        while not await _dead_letters(probe) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # the rest of the batch
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert runner.dead_lettered == 1
    history = check_history(range(50), await probe.effects_of())
    assert history["lost"] == 1 and history["duplicates"] == 0, "only the poison event is missing"

    rows = await _dead_letters(probe)
    assert len(rows) == 1 and rows[0]["error_code"] == "delivery_limit" and rows[0]["deliveries"] == 3
    record = " ".join(str(v) for v in rows[0].values())
    assert list(pii_scan.scan_text(record)) == [], "a dead letter must not hold personal data"
    assert "downstream keeps failing" not in record, "exception messages are not stored, only their type"

    fixed = True
    assert await runner.replay_dead_letter(rows[0]["id"]) == "applied"
    assert await runner.replay_dead_letter(rows[0]["id"]) == "already_applied"
    history = check_history(range(50), await probe.effects_of())
    assert history["lost"] == history["duplicates"] == history["unexpected"] == 0, history
    await bus.delete_streams(("registry",))
    await bus.close()


async def _dead_letters(probe):
    table = probe.tables.dead_letter
    async with probe.db.transaction() as s:
        return (await s.execute(select(table))).mappings().all()
