"""Baoxue's event path, exactly as a service runs it: outbox → :class:`OutboxRelay` → JetStream →
:class:`ConsumerRunner` → an effect row, with timestamps of each stage for the latency profile."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg
from sqlalchemy import insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from b5.data import Side, effect_counts, empty
from baoxue.contracts.registry import ChildRegistered
from baoxue.events.bus import EventBus
from baoxue.events.consumer import ConsumerRunner, ReceivedEvent, Subscription
from baoxue.events.envelope import Envelope, stream_name
from baoxue.events.outbox import Outbox
from baoxue.events.relay import OutboxRelay

PACE_PER_SECOND = 1_000
PACED_WRITERS = 16  # concurrent one-event transactions at most (a service's request concurrency)
STALL_SECONDS = 30.0  # no progress for this long: stop waiting and count what is missing as lost


def _event_id(msg: Msg) -> str:
    return (msg.headers or {}).get("Nats-Msg-Id", "")


class TimedRelay(OutboxRelay):
    """The library's relay; notes when each event's PubAck arrived."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acked_at: dict[str, float] = {}

    async def _publish(self, rows: Sequence[Any]) -> list[int]:
        acked = await super()._publish(rows)
        now = time.perf_counter()
        done = set(acked)
        for row in rows:
            if row.position in done:
                self.acked_at.setdefault(row.event_id, now)
        return acked


class TimedRunner(ConsumerRunner):
    """The library's consumer; notes when each event was fetched and when its effect committed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetched_at: dict[str, float] = {}
        self.effect_at: dict[str, float] = {}

    async def apply(self, envelope: Envelope, entry: Any) -> bool:
        applied = await super().apply(envelope, entry)
        if applied:
            self.effect_at.setdefault(envelope.id, time.perf_counter())
        return applied

    async def handle_batch(self, sub: Subscription, msgs: list[Msg]) -> None:
        """The library's batched path; the effect time of each event is its batch's commit."""
        now = time.perf_counter()
        for msg in msgs:
            self.fetched_at.setdefault(_event_id(msg), now)
        await super().handle_batch(sub, msgs)
        now = time.perf_counter()
        for msg in msgs:
            self.effect_at.setdefault(_event_id(msg), now)


def effect_handler(side: Side) -> Callable[..., Any]:
    async def on_child_registered(session: AsyncSession, event: ReceivedEvent[ChildRegistered]) -> None:
        if event.envelope.sequence < 1:
            return
        await session.execute(
            insert(side.effects).values(
                child_id=event.data.child_id,
                hukou_town=event.data.hukou_town,
                status=event.data.status,
                sequence=event.envelope.sequence,
            )
        )

    return on_child_registered


@dataclass
class Outcome:
    seconds: float
    lost: int
    duplicates: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    achieved_per_second: float | None = None
    failed_writes: int = 0
    stages_ms: dict[str, list[float]] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def event_path(
    publisher: Side, consumer: Side, nats_url: str
) -> AsyncIterator[tuple[Outbox, TimedRelay, TimedRunner]]:
    """Relay and consumer running on a fresh namespace; yields (outbox, relay, runner)."""
    namespace = f"bench{secrets.token_hex(3)}"
    pub_bus = EventBus(nats_url, namespace=namespace, client_name="bench-publisher")
    sub_bus = EventBus(nats_url, namespace=namespace, client_name="bench-consumer")
    await pub_bus.connect()
    await sub_bus.connect()
    await pub_bus.ensure_streams(("registry",))
    outbox = Outbox(publisher.tables)
    relay = TimedRelay(publisher.db, publisher.tables, pub_bus, outbox)
    runner = TimedRunner(
        "bench",
        consumer.db,
        consumer.tables,
        sub_bus,
        [Subscription("registry", {ChildRegistered: effect_handler(consumer)})],
    )
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(runner.run())]
    try:
        await wait_for_consumer(sub_bus, "registry", runner.durable_name(runner.subscriptions[0]))
        yield outbox, relay, runner
    finally:
        await cancel_all(tasks)
        await pub_bus.delete_streams(("registry",))
        await pub_bus.close()
        await sub_bus.close()


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel and await ``tasks``, cancelling again while one is still running (a cancel racing a
    completed wait is swallowed by ``asyncio.wait_for`` on Python 3.11)."""
    while pending := [t for t in tasks if not t.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.2)
    await asyncio.gather(*tasks, return_exceptions=True)


async def wait_for_consumer(bus: EventBus, service: str, durable: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await bus.js.consumer_info(stream_name(bus.namespace, service), durable)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


async def wait_until(progress: Callable[[], int], target: int) -> None:
    """Return when ``progress() >= target``, or when it has not moved for STALL_SECONDS."""
    last, last_change = -1, time.monotonic()
    while (now := progress()) < target:
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            return
        await asyncio.sleep(0.002)


async def baoxue_throughput(
    publisher: Side, consumer: Side, nats_url: str, events: list[ChildRegistered], txn_size: int
) -> Outcome:
    """Write every event in transactions of ``txn_size``; time until the last effect has committed."""
    await empty(publisher)
    await empty(consumer)
    async with event_path(publisher, consumer, nats_url) as (outbox, _relay, runner):
        start = time.perf_counter()
        for i in range(0, len(events), txn_size):
            async with publisher.db.transaction() as session:
                await outbox.add_many(session, [(e, e.child_id, 1) for e in events[i : i + txn_size]])
        await wait_until(lambda: runner.applied, len(events))
        seconds = time.perf_counter() - start
    total, distinct = await effect_counts(consumer)
    return Outcome(seconds, lost=len(events) - distinct, duplicates=total - distinct)


async def baoxue_latency(
    publisher: Side, consumer: Side, nats_url: str, events: list[ChildRegistered]
) -> Outcome:
    """One event per transaction at PACE_PER_SECOND; latency from just before commit to the effect's
    commit, and per stage: commit → PubAck (relay), PubAck → fetched (JetStream and the fetch), fetched →
    effect committed (consumer)."""
    await empty(publisher)
    await empty(consumer)
    committing: dict[str, float] = {}
    writers = asyncio.Semaphore(PACED_WRITERS)
    failed: list[str] = []

    async def write_one(outbox: Outbox, event: ChildRegistered) -> None:
        """A request's transaction; one that fails (SQLite: database is locked) rolled back, so its
        event never existed: counted as a failed write, not as lost."""
        async with writers:
            try:
                async with publisher.db.transaction() as session:
                    event_id = await outbox.add(session, event, subject=event.child_id, sequence=1)
                    before_commit = time.perf_counter()
            except (OperationalError, PoolTimeoutError) as exc:
                failed.append(type(exc).__name__)
                return
            committing[event_id] = before_commit

    async with event_path(publisher, consumer, nats_url) as (outbox, relay, runner):
        start = time.perf_counter()
        writes = []
        for i, event in enumerate(events):
            delay = start + i / PACE_PER_SECOND - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writes.append(asyncio.create_task(write_one(outbox, event)))
        await asyncio.gather(*writes)
        written = time.perf_counter() - start
        await wait_until(lambda: runner.applied, len(committing))
        seconds = time.perf_counter() - start
    effect, acked, fetched = runner.effect_at, relay.acked_at, runner.fetched_at
    done = [k for k in committing if k in effect and k in acked and k in fetched]
    stages = {
        "relay": [(acked[k] - committing[k]) * 1000 for k in done],
        "delivery": [(fetched[k] - acked[k]) * 1000 for k in done],
        "consumer": [(effect[k] - fetched[k]) * 1000 for k in done],
    }
    total, distinct = await effect_counts(consumer)
    return Outcome(
        seconds,
        lost=len(committing) - distinct,
        failed_writes=len(failed),
        duplicates=total - distinct,
        latencies_ms=[(effect[k] - t) * 1000 for k, t in committing.items() if k in effect],
        achieved_per_second=len(events) / written,
        stages_ms=stages,
    )
