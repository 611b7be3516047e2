"""A consumer process for the SIGKILL test: applies ChaosHappened events to the probe database.

python -m tests.reliability.consumer_process DATABASE_URL NATS_URL NAMESPACE
"""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.db import Database
from baoxue.events.bus import EventBus
from baoxue.events.consumer import ConsumerRunner, ReceivedEvent, Subscription
from tests.reliability.conftest import ChaosHappened, effect_handler, probe_metadata


async def main(database_url: str, nats_url: str, namespace: str) -> None:
    _metadata, tables, effects = probe_metadata()
    db = Database(database_url)
    bus = EventBus(nats_url, namespace=namespace, client_name="chaos-consumer-process")
    await bus.connect()
    apply = effect_handler(effects, by="process")

    async def slow_apply(session: AsyncSession, event: ReceivedEvent[ChaosHappened]) -> None:
        await apply(session, event)
        await asyncio.sleep(0.002)  # widen the window in which a kill lands mid-transaction

    runner = ConsumerRunner(
        "chaos-process",
        db,
        tables,
        bus,
        [Subscription("registry", {ChaosHappened: slow_apply})],
        max_deliver=1000,
        ack_wait=2.0,
        batch=50,
    )
    print("consuming", flush=True)
    await runner.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
