"""A consumer process killed with SIGKILL in the middle of work, again and again: 0 lost, 0 doubled.

CI: 2,000 events and 10 kills; ``make chaos`` sets KILL_EVENTS=20000 KILLS=30.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baoxue.events.bus import EventBus
from baoxue.events.outbox import Outbox
from baoxue.events.relay import OutboxRelay

from .conftest import check_history

EVENTS = int(os.environ.get("KILL_EVENTS", "2000"))
KILLS = int(os.environ.get("KILLS", "10"))
ROOT = Path(__file__).resolve().parents[2]


def _spawn(probe, nats_url: str, namespace: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.consumer_process", probe.url, nats_url, namespace],
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
async def test_consumer_killed_mid_work_loses_and_doubles_nothing(
    probe, baoxue_infra, event_namespace, tmp_path
):
    rng = random.Random(11)
    bus = EventBus(baoxue_infra.nats_url, namespace=event_namespace, client_name="kill-pub")
    await bus.connect()
    await bus.ensure_streams(("registry",))
    relay = OutboxRelay(probe.db, probe.tables, bus, Outbox(probe.tables), batch_size=500)
    for start in range(0, EVENTS, 500):
        await probe.write(range(start, min(EVENTS, start + 500)))
    while await relay.publish_pending():
        pass
    log = tmp_path / "consumer.log"
    kills, progress = 0, []
    try:
        for _ in range(KILLS):
            process = _spawn(probe, baoxue_infra.nats_url, event_namespace, log)
            before = await probe.count()
            deadline = time.monotonic() + 30
            while await probe.count() == before and time.monotonic() < deadline:  # wait until it is working
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.uniform(0.05, 0.6))
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            kills += 1
            progress.append(await probe.count())
            if progress[-1] >= EVENTS:
                break
        process = _spawn(probe, baoxue_infra.nats_url, event_namespace, log)  # the survivor finishes
        deadline = time.monotonic() + 120
        while await probe.count() < EVENTS and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(4)  # ack_wait 2 s: any un-acked message would be redelivered by now
        process.terminate()
        process.wait(10)
    finally:
        await bus.delete_streams(("registry",))
        await bus.close()
    history = check_history(range(EVENTS), await probe.effects_of())
    print(f"consumer SIGKILL: {history} kills={kills} progress at each kill={progress}")
    assert kills >= min(KILLS, 3) and progress[0] < EVENTS, "the kills must land in the middle of the work"
    assert history["lost"] == history["duplicates"] == history["unexpected"] == 0, history
