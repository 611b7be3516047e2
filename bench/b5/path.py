"""Baoxue's event path, exactly as a service runs it: outbox → :class:`OutboxRelay` → JetStream →
:class:`ConsumerRunner` → an effect row, with timestamps of each stage for the latency profile."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
    """The per-event handler: one ``INSERT`` of an effect row per event (like a read-model upsert)."""

    async def on_child_registered(session: AsyncSession, event: ReceivedEvent[ChildRegistered]) -> None:
        if event.envelope.sequence < 1:
            return
        await session.execute(insert(side.effects).values(**_effect_row(event)))

    return on_child_registered


def effect_batch_handler(side: Side) -> Callable[..., Any]:
    """The set-based handler (``Subscription.batch_handlers``): the same rows, one statement per run of
    events (an executemany ``INSERT``, sent as multi-row VALUES pages)."""

    async def on_many(session: AsyncSession, events: list[ReceivedEvent[ChildRegistered]]) -> None:
        rows = [_effect_row(e) for e in events if e.envelope.sequence >= 1]
        if rows:
            await session.execute(insert(side.effects), rows)

    return on_many


def _effect_row(event: ReceivedEvent[ChildRegistered]) -> dict[str, Any]:
    return {
        "child_id": event.data.child_id,
        "hukou_town": event.data.hukou_town,
        "status": event.data.status,
        "sequence": event.envelope.sequence,
    }


def subscription(side: Side, handler: str) -> Subscription:
    """The consumer's subscription; ``handler`` "set" adds the set-based handler, "per-event" does not."""
    batch = {ChildRegistered: effect_batch_handler(side)} if handler == "set" else {}
    return Subscription("registry", {ChildRegistered: effect_handler(side)}, batch)


@dataclass
class Outcome:
    seconds: float
    lost: int
    duplicates: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    achieved_per_second: float | None = None
    failed_writes: int = 0
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    consumer_cpu_seconds: float | None = None


@contextlib.asynccontextmanager
async def start_runner(side: Side, bus: EventBus, *, handler: str) -> AsyncIterator[TimedRunner]:
    """The consumer service: the library's runner on ``side``'s database, until the block ends."""
    runner = TimedRunner("bench", side.db, side.tables, bus, [subscription(side, handler)])
    task = asyncio.create_task(runner.run())
    try:
        await wait_for_consumer(bus, "registry", runner.durable_name(runner.subscriptions[0]))
        yield runner
    finally:
        await cancel_all([task])


class ConsumerView:
    """What the publisher's process sees of the consumer: applied count, latest effect time, and at the
    end every event's fetch and effect times. In-process (a runner) or a process of its own."""

    def __init__(self, runner: TimedRunner | None = None) -> None:
        self.runner = runner
        self.reported = 0  # the consumer process's latest "applied" line
        self.last_effect = 0.0
        self.fetched_at: dict[str, float] = {}
        self.effect_at: dict[str, float] = {}
        self.cpu_seconds: float | None = None

    @property
    def applied(self) -> int:
        return self.runner.applied if self.runner is not None else self.reported


@contextlib.asynccontextmanager
async def consumer_in_process(
    consumer: Side, nats_url: str, namespace: str, handler: str
) -> AsyncIterator[ConsumerView]:
    """The consumer on this process's event loop, beside the writers and the relay."""
    bus = EventBus(nats_url, namespace=namespace, client_name="bench-consumer")
    await bus.connect()
    try:
        async with start_runner(consumer, bus, handler=handler) as runner:
            view = ConsumerView(runner)
            yield view
        view.fetched_at, view.effect_at = runner.fetched_at, runner.effect_at
        view.last_effect = max(runner.effect_at.values(), default=0.0)
    finally:
        await bus.close()


@contextlib.asynccontextmanager
async def consumer_process(
    consumer: Side, nats_url: str, namespace: str, handler: str
) -> AsyncIterator[ConsumerView]:
    """The consumer in a process of its own (``bench/b5/consumer_process.py``), as a second service is."""
    script = Path(__file__).with_name("consumer_process.py")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        "--database",
        consumer.db.url,
        "--nats",
        nats_url,
        "--namespace",
        namespace,
        "--handler",
        handler,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=2**28,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdout = proc.stdout
    view = ConsumerView()
    final: dict[str, Any] = {}

    async def read() -> None:
        while line := (await stdout.readline()).decode():
            if line.startswith("applied "):
                _, n, t = line.split()
                view.reported, view.last_effect = int(n), float(t)
            elif line.startswith("{"):
                final.update(json.loads(line))

    first = (await stdout.readline()).decode().strip()
    if first != "ready":
        proc.kill()
        raise RuntimeError(f"the consumer process did not start: {first!r}")
    reader = asyncio.create_task(read())
    try:
        yield view
    finally:
        with contextlib.suppress(Exception):
            proc.stdin.write(b"stop\n")
            await proc.stdin.drain()
        try:
            async with asyncio.timeout(60):
                await proc.wait()
                await reader
        except TimeoutError:
            proc.kill()
            await proc.wait()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    view.fetched_at = final.get("fetched_at", {})
    view.effect_at = final.get("effect_at", {})
    view.cpu_seconds = final.get("cpu_seconds")
    if view.effect_at:
        view.last_effect = max(view.effect_at.values())


@contextlib.asynccontextmanager
async def event_path(
    publisher: Side, consumer: Side, nats_url: str, *, separate: bool = True, handler: str = "set"
) -> AsyncIterator[tuple[Outbox, TimedRelay, ConsumerView]]:
    """Relay (in this process, the publisher's) and consumer (``separate``: in a process of its own)
    running on a fresh namespace; yields (outbox, relay, consumer view)."""
    namespace = f"bench{secrets.token_hex(3)}"
    pub_bus = EventBus(nats_url, namespace=namespace, client_name="bench-publisher")
    await pub_bus.connect()
    await pub_bus.ensure_streams(("registry",))
    outbox = Outbox(publisher.tables)
    relay = TimedRelay(publisher.db, publisher.tables, pub_bus, outbox)
    start_consumer = consumer_process if separate else consumer_in_process
    try:
        async with start_consumer(consumer, nats_url, namespace, handler) as view:
            task = asyncio.create_task(relay.run())
            try:
                yield outbox, relay, view
            finally:
                await cancel_all([task])
    finally:
        await pub_bus.delete_streams(("registry",))
        await pub_bus.close()


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
    publisher: Side,
    consumer: Side,
    nats_url: str,
    events: list[ChildRegistered],
    txn_size: int,
    *,
    separate: bool = True,
    handler: str = "set",
) -> Outcome:
    """Write every event in transactions of ``txn_size``; time until the last effect has committed."""
    await empty(publisher)
    await empty(consumer)
    async with event_path(publisher, consumer, nats_url, separate=separate, handler=handler) as (
        outbox,
        _relay,
        view,
    ):
        start = time.perf_counter()
        for i in range(0, len(events), txn_size):
            async with publisher.db.transaction() as session:
                await outbox.add_many(session, [(e, e.child_id, 1) for e in events[i : i + txn_size]])
        await wait_until(lambda: view.applied, len(events))
        waited = time.perf_counter() - start
    # The last effect's commit time (the consumer's clock is CLOCK_MONOTONIC too), not when we noticed.
    seconds = view.last_effect - start if view.last_effect > start else waited
    total, distinct = await effect_counts(consumer)
    return Outcome(
        seconds,
        lost=len(events) - distinct,
        duplicates=total - distinct,
        consumer_cpu_seconds=view.cpu_seconds,
    )


async def baoxue_latency(
    publisher: Side,
    consumer: Side,
    nats_url: str,
    events: list[ChildRegistered],
    *,
    separate: bool = True,
    handler: str = "set",
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

    async with event_path(publisher, consumer, nats_url, separate=separate, handler=handler) as (
        outbox,
        relay,
        view,
    ):
        start = time.perf_counter()
        writes = []
        for i, event in enumerate(events):
            delay = start + i / PACE_PER_SECOND - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writes.append(asyncio.create_task(write_one(outbox, event)))
        await asyncio.gather(*writes)
        written = time.perf_counter() - start
        await wait_until(lambda: view.applied, len(committing))
        seconds = time.perf_counter() - start
    effect, acked, fetched = view.effect_at, relay.acked_at, view.fetched_at
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
        consumer_cpu_seconds=view.cpu_seconds,
    )
