"""B5 events: Baoxue's event path against raw JetStream publishing, in the same run on the same payloads.

Baoxue's path (the library, exactly as a service runs it): a publisher writes ``ChildRegistered`` events
into its outbox inside transactions (:class:`~baoxue.events.outbox.Outbox`), the
:class:`~baoxue.events.relay.OutboxRelay` publishes them to JetStream with ``Nats-Msg-Id`` and marks them
published, and a consumer's :class:`~baoxue.events.consumer.ConsumerRunner` applies each one in a
transaction with its inbox row and an effect (a row in ``child_effects``, no unique key, so a double
application would show). Publisher and consumer have databases of their own, as two services do.

Comparator: the same envelope bytes sent with ``js.publish_async`` (with ``Nats-Msg-Id``) and a raw
durable pull consumer acking them: the most the same NATS server and client library move per second.

Figures per size (number of events), per backend (PostgreSQL primary, SQLite noted):

- throughput: events/s from the first write until the last effect (resp. last ack); goal ratio ≥ 0.2,
  and 0 lost (events written but never applied);
- latency: p99 from an event's commit to its effect's commit while events are written one per
  transaction at a paced 1,000 events/s (at most ``--paced-events`` of them); goal < 100 ms. The raw
  path's p99 (publish → consumer receipt) at the same pace is reported beside it.

Run: ``python bench/b5_events.py --sizes 10000,100000 --repeats 3 --out bench/results/b5.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness import (
    PeakMemory,
    Record,
    argument_parser,
    nats_server,
    paired_medians_async,
    percentile,
    ratio,
    scratch_database,
    write_records,
)
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.registry import ChildRegistered
from baoxue.db import Database, sync_url, utcnow
from baoxue.events.bus import EventBus
from baoxue.events.consumer import ConsumerRunner, ReceivedEvent, Subscription
from baoxue.events.envelope import Envelope, EventData, stream_name
from baoxue.events.outbox import Outbox
from baoxue.events.relay import OutboxRelay
from baoxue.events.tables import EventTables, define_event_tables

PACE_PER_SECOND = 1_000
PACED_WRITERS = 16  # concurrent one-event transactions at most (a service's request concurrency)
STALL_SECONDS = 30.0  # no progress for this long: stop waiting and count what is missing as lost
TOWNS = ("370406001", "370406002", "370406101", "370406102", "370406103", "370406104")


# --- the data ---------------------------------------------------------------------------------------


def make_events(count: int, seed: str) -> list[ChildRegistered]:
    """``count`` realistic ``ChildRegistered`` events (surrogate ids and blind indexes, no personal data)."""
    born = dt.date(2012, 9, 1)
    events = []
    for n in range(count):
        digest = hashlib.sha256(f"{seed}:{n}".encode()).hexdigest()
        town = TOWNS[n % len(TOWNS)]
        events.append(
            ChildRegistered(
                child_id=f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}",
                id_blind_index=digest,
                birth_date=born + dt.timedelta(days=n % 3000),
                sex="M" if n % 2 else "F",
                hukou_town=town,
                hukou_village=f"{town}{200 + n % 30:03d}",
                hukou_school_district=f"{town}01",
                categories=["left_behind"] if n % 7 == 0 else [],
                status="active",
                sources=["police", "education"],
            )
        )
    return events


@dataclass
class Side:
    """One service's database: its event tables and the consumer's effect table."""

    db: Database
    tables: EventTables
    effects: Table


def define_side(url: str) -> Side:
    metadata = MetaData()
    tables = define_event_tables(metadata)
    effects = Table(
        "child_effects",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("child_id", String(36), nullable=False),
        Column("hukou_town", String(12)),
        Column("status", String(20), nullable=False),
        Column("sequence", Integer, nullable=False),
    )
    engine = create_engine(sync_url(url))
    metadata.create_all(engine)
    engine.dispose()
    return Side(Database(url, pool_size=20), tables, effects)


async def empty(side: Side) -> None:
    names = ["outbox", "inbox", "dead_letter", "child_effects"]
    async with side.db.transaction() as session:
        if side.db.dialect == "postgresql":
            await session.execute(text("TRUNCATE " + ", ".join(names) + " RESTART IDENTITY"))
        else:
            for name in names:
                await session.execute(text(f"DELETE FROM {name}"))


async def effect_counts(side: Side) -> tuple[int, int]:
    """(rows, distinct children) in the consumer's effect table."""
    e = side.effects
    async with side.db.transaction() as session:
        total = (await session.execute(select(func.count()).select_from(e))).scalar_one()
        distinct = (await session.execute(select(func.count(func.distinct(e.c.child_id))))).scalar_one()
    return int(total), int(distinct)


# --- Baoxue's path ----------------------------------------------------------------------------------


class TimedRunner(ConsumerRunner):
    """A ConsumerRunner that notes when each event's effect transaction committed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.effect_at: dict[str, float] = {}

    async def apply(self, envelope: Envelope, entry: Any) -> bool:
        applied = await super().apply(envelope, entry)
        if applied:
            self.effect_at.setdefault(envelope.subject, time.perf_counter())
        return applied

    async def handle_batch(self, sub: Subscription, msgs: list[Msg]) -> None:
        """The library's batched path; the effect time of each event is its batch's commit."""
        await super().handle_batch(sub, msgs)
        now = time.perf_counter()
        for msg in msgs:
            self.effect_at.setdefault(json.loads(msg.data)["subject"], now)


class BatchedInboxRunner(TimedRunner):
    """PROTOTYPE, not the library: what a batched consumer would gain (see docs/performance.md).

    Applies a whole fetch in one transaction: one multi-row inbox insert ``ON CONFLICT DO NOTHING
    RETURNING event_id`` claims the new events, their handlers run in that transaction, one commit, then
    every message is acked. If anything in the batch fails, the batch is rolled back and each message
    goes through the library's own one-at-a-time :meth:`handle` (retries, dead letters), so the
    exactly-once and poison-event rules are unchanged.
    """

    async def _consume(self, sub: Subscription) -> None:
        await self.bus.ensure_streams((sub.source_service,))
        await self.ensure_consumer(sub)
        psub = await self.bus.js.pull_subscribe_bind(
            durable=self.durable_name(sub), stream=stream_name(self.bus.namespace, sub.source_service)
        )
        while True:  # the benchmark's NATS never restarts: no re-binding needed here
            try:
                msgs = await psub.fetch(self.batch, timeout=self.fetch_timeout)
            except (TimeoutError, NatsTimeoutError):
                continue
            await self.handle_batch(sub, msgs)

    async def handle_batch(self, sub: Subscription, msgs: list[Msg]) -> None:
        parsed = []
        for msg in msgs:
            try:
                envelope = Envelope.model_validate_json(msg.data)
            except ValidationError:
                await self.handle(sub, msg)  # the library dead-letters it
                continue
            entry = sub.by_type.get(envelope.type)
            if entry is None:
                await msg.ack()
                continue
            parsed.append((msg, envelope, entry))
        if not parsed:
            return
        try:
            async with self.db.transaction() as session:
                claimed = await self._claim_many(session, [envelope for _, envelope, _ in parsed])
                for _, envelope, (contract, handler) in parsed:
                    if envelope.id in claimed:
                        data = contract.model_validate(envelope.data)
                        await handler(session, ReceivedEvent(envelope=envelope, data=data))
        except Exception:
            for msg, _, _ in parsed:
                await self.handle(sub, msg)
            return
        now = time.perf_counter()
        for msg, envelope, _ in parsed:
            if envelope.id in claimed:
                self.applied += 1
                self.effect_at[envelope.subject] = now
            else:
                self.duplicates += 1
            await msg.ack()

    async def _claim_many(self, session: AsyncSession, envelopes: list[Envelope]) -> set[str]:
        inbox = self.tables.inbox
        now = utcnow()
        rows = [
            {"consumer": self.consumer, "event_id": e.id, "event_type": e.type, "processed_at": now}
            for e in envelopes
        ]
        dialect_insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        statement = dialect_insert(inbox).values(rows).on_conflict_do_nothing().returning(inbox.c.event_id)
        return set((await session.execute(statement)).scalars())


RUNNERS: dict[str, type[TimedRunner]] = {
    "library": TimedRunner,
    "batched-inbox prototype": BatchedInboxRunner,
}


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


@contextlib.asynccontextmanager
async def event_path(  # type: ignore[no-untyped-def]
    publisher: Side, consumer: Side, nats_url: str, *, runner_cls: type[TimedRunner] = TimedRunner
):
    """Relay and consumer running on a fresh namespace; yields (outbox, runner)."""
    namespace = f"bench{secrets.token_hex(3)}"
    pub_bus = EventBus(nats_url, namespace=namespace, client_name="bench-publisher")
    sub_bus = EventBus(nats_url, namespace=namespace, client_name="bench-consumer")
    await pub_bus.connect()
    await sub_bus.connect()
    await pub_bus.ensure_streams(("registry",))
    outbox = Outbox(publisher.tables)
    relay = OutboxRelay(publisher.db, publisher.tables, pub_bus, outbox, batch_size=500)
    runner = runner_cls(
        "bench",
        consumer.db,
        consumer.tables,
        sub_bus,
        [Subscription("registry", {ChildRegistered: effect_handler(consumer)})],
    )
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(runner.run())]
    try:
        await wait_for_consumer(sub_bus, "registry", runner.durable_name(runner.subscriptions[0]))
        yield outbox, runner
    finally:
        await cancel_all(tasks)
        await pub_bus.delete_streams(("registry",))
        await pub_bus.close()
        await sub_bus.close()


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel and await ``tasks``, cancelling again while one is still running: on Python 3.11
    ``asyncio.wait_for`` can swallow a cancellation that races its inner future (the relay's idle wait)."""
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
    runner_cls: type[TimedRunner] = TimedRunner,
) -> Outcome:
    """Write every event in transactions of ``txn_size``; time until the last effect has committed."""
    await empty(publisher)
    await empty(consumer)
    async with event_path(publisher, consumer, nats_url, runner_cls=runner_cls) as (outbox, runner):
        start = time.perf_counter()
        for i in range(0, len(events), txn_size):
            async with publisher.db.transaction() as session:
                await outbox.add_many(session, [(e, e.child_id, 1) for e in events[i : i + txn_size]])
        await wait_until(lambda: runner.applied, len(events))
        seconds = time.perf_counter() - start
    total, distinct = await effect_counts(consumer)
    return Outcome(seconds, lost=len(events) - distinct, duplicates=total - distinct)


async def baoxue_latency(
    publisher: Side,
    consumer: Side,
    nats_url: str,
    events: list[ChildRegistered],
    runner_cls: type[TimedRunner] = TimedRunner,
) -> Outcome:
    """One event per transaction at PACE_PER_SECOND; latency from just before commit to the effect's commit."""
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
                    await outbox.add(session, event, subject=event.child_id, sequence=1)
                    before_commit = time.perf_counter()
            except (OperationalError, PoolTimeoutError) as exc:
                failed.append(type(exc).__name__)
                return
            committing[event.child_id] = before_commit

    async with event_path(publisher, consumer, nats_url, runner_cls=runner_cls) as (outbox, runner):
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
        latencies = [(runner.effect_at[k] - t) * 1000 for k, t in committing.items() if k in runner.effect_at]
    total, distinct = await effect_counts(consumer)
    return Outcome(
        seconds,
        lost=len(committing) - distinct,
        failed_writes=len(failed),
        duplicates=total - distinct,
        latencies_ms=latencies,
        achieved_per_second=len(events) / written,
    )


# --- the comparator: raw JetStream ------------------------------------------------------------------


def raw_messages(events: list[EventData]) -> list[tuple[str, str, bytes]]:
    """(event id, relative subject, envelope bytes): the same bytes the relay would send."""
    out = []
    for e in events:
        env = Envelope.wrap(e, subject=getattr(e, "child_id", "x"), sequence=1, trace_id=None)
        out.append((env.id, e.relative_subject(), env.model_dump_json().encode()))
    return out


async def raw_path(
    nats_url: str, messages: list[tuple[str, str, bytes]], *, pace: float | None = None, batch: int = 100
) -> Outcome:
    """publish_async every message (paced or flat out); a raw pull consumer acks them."""
    namespace = f"bench{secrets.token_hex(3)}"
    bus = EventBus(nats_url, namespace=namespace, client_name="bench-raw")
    await bus.connect()
    await bus.ensure_streams(("registry",))
    stream = stream_name(namespace, "registry")
    durable = "raw"
    await bus.js.add_consumer(
        stream,
        config=ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=max(1000, batch * 4),
        ),
    )
    psub = await bus.js.pull_subscribe_bind(durable=durable, stream=stream)
    sent_at: dict[str, float] = {}
    received_at: dict[str, float] = {}

    async def consume() -> None:
        while len(received_at) < len(messages):
            try:
                msgs = await psub.fetch(batch, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            now = time.perf_counter()
            for msg in msgs:
                received_at.setdefault((msg.headers or {}).get("Nats-Msg-Id", ""), now)
                await msg.ack()

    consumer = asyncio.create_task(consume())
    try:
        start = time.perf_counter()
        futures = []
        for i, (event_id, subject, data) in enumerate(messages):
            if pace:
                delay = start + i / pace - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent_at[event_id] = time.perf_counter()
            futures.append(
                await bus.js.publish_async(
                    f"{namespace}.{subject}", data, headers={"Nats-Msg-Id": event_id}, wait_stall=5.0
                )
            )
        await asyncio.gather(*futures)
        await wait_until(lambda: len(received_at), len(messages))
        seconds = time.perf_counter() - start
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await bus.delete_streams(("registry",))
        await bus.close()
    latencies = [(received_at[k] - t) * 1000 for k, t in sent_at.items() if k in received_at]
    lost = sum(1 for k in sent_at if k not in received_at)
    return Outcome(seconds, lost=lost, latencies_ms=latencies)


# --- the benchmark ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    publisher: Side
    consumer: Side
    nats_url: str
    backend: str
    repeats: int
    txn_size: int
    variant: str = "library"

    @property
    def label(self) -> str:
        backend = "PostgreSQL" if self.backend == "postgresql" else "SQLite"
        return backend if self.variant == "library" else f"{self.variant}, {backend}"

    @property
    def runner_cls(self) -> type[TimedRunner]:
        return RUNNERS[self.variant]


async def measure_throughput(setup: Setup, events: list[ChildRegistered]) -> Record:
    """Events/s of Baoxue's path and of raw JetStream, alternating, ``setup.repeats`` times each."""
    size = len(events)
    messages = raw_messages(list(events))
    worst = {"lost": 0, "duplicates": 0}
    peak = PeakMemory(include_children=False)

    async def baoxue_sample() -> float:
        with peak:
            outcome = await baoxue_throughput(
                setup.publisher, setup.consumer, setup.nats_url, events, setup.txn_size, setup.runner_cls
            )
        worst["lost"] = max(worst["lost"], outcome.lost)
        worst["duplicates"] = max(worst["duplicates"], outcome.duplicates)
        return size / outcome.seconds

    async def raw_sample() -> float:
        outcome = await raw_path(setup.nats_url, messages)
        worst["raw_lost"] = max(worst.get("raw_lost", 0), outcome.lost)
        return size / outcome.seconds

    ours, theirs = await paired_medians_async(baoxue_sample, raw_sample, setup.repeats)
    r = ratio(ours.median, theirs.median)
    return Record(
        benchmark=f"B5 events throughput ({setup.label})",
        size=size,
        baoxue=round(ours.median, 1),
        comparator=round(theirs.median, 1),
        unit="events/s",
        ratio=r,
        goal="≥ 0.2, 0 lost",
        met=r is not None and r >= 0.2 and worst["lost"] == 0,
        peak_memory_mb=peak.mb,
        median_of=setup.repeats,
        extra={
            "backend": setup.backend,
            "consumer": setup.variant,
            "lost": worst["lost"],
            "duplicates": worst["duplicates"],
            "comparator_lost": worst.get("raw_lost", 0),
            "transaction_size": setup.txn_size,
            "baoxue_samples": [round(x, 1) for x in ours.samples],
            "comparator_samples": [round(x, 1) for x in theirs.samples],
        },
    )


async def measure_latency(setup: Setup, events: list[ChildRegistered]) -> Record:
    """p99 commit→effect of Baoxue's path at PACE_PER_SECOND, beside raw publish→receipt at that pace."""
    messages = raw_messages(list(events))
    p99s: list[float] = []
    p50s: list[float] = []
    raw_p99s: list[float] = []
    rates: list[float] = []
    lost = failed_writes = 0
    peak = PeakMemory(include_children=False)
    for _ in range(setup.repeats):
        with peak:
            outcome = await baoxue_latency(
                setup.publisher, setup.consumer, setup.nats_url, events, setup.runner_cls
            )
        raw = await raw_path(setup.nats_url, messages, pace=PACE_PER_SECOND)
        lost = max(lost, outcome.lost)
        failed_writes = max(failed_writes, outcome.failed_writes)
        p99s.append(percentile(outcome.latencies_ms, 99))
        p50s.append(percentile(outcome.latencies_ms, 50))
        raw_p99s.append(percentile(raw.latencies_ms, 99))
        rates.append(outcome.achieved_per_second or 0.0)
    p99, raw_p99 = statistics.median(p99s), statistics.median(raw_p99s)
    achieved = statistics.median(rates)
    return Record(
        benchmark=f"B5 events p99 latency at 1,000/s ({setup.label})",
        size=len(events),
        baoxue=round(p99, 1),
        comparator=round(raw_p99, 1),
        unit="ms p99 commit→effect",
        ratio=ratio(p99, raw_p99),
        goal="< 100 ms at ≥ 950 writes/s, 0 lost, 0 failed writes",
        met=p99 < 100 and lost == 0 and failed_writes == 0 and achieved >= 0.95 * PACE_PER_SECOND,
        peak_memory_mb=peak.mb,
        median_of=setup.repeats,
        extra={
            "backend": setup.backend,
            "consumer": setup.variant,
            "p99_ms": round(p99, 1),
            "p50_ms": round(statistics.median(p50s), 1),
            "lost": lost,
            "pace_per_second": PACE_PER_SECOND,
            "achieved_writes_per_second": round(achieved, 1),
            "failed_writes": failed_writes,
            "baoxue_samples": [round(x, 1) for x in p99s],
            "comparator_samples": [round(x, 1) for x in raw_p99s],
        },
    )


async def bench_backend(
    backend: str,
    sizes: list[int],
    repeats: int,
    nats_url: str,
    *,
    txn_size: int,
    paced_events: int,
    variants: list[str],
    keep: Callable[[Record], None],
) -> None:
    with scratch_database(backend, "b5pub") as pub_url, scratch_database(backend, "b5sub") as sub_url:
        publisher, consumer = define_side(pub_url), define_side(sub_url)
        try:
            for size in sizes:
                events = make_events(size, seed=f"b5:{size}")
                for variant in variants:
                    setup = Setup(publisher, consumer, nats_url, backend, repeats, txn_size, variant)
                    record = await measure_throughput(setup, events)
                    keep(record)
                    print(
                        f"b5 {setup.label} n={size}: {record.baoxue} vs {record.comparator} events/s, "
                        f"lost {record.extra['lost']}",
                        flush=True,
                    )
                    record = await measure_latency(setup, events[: min(size, paced_events)])
                    keep(record)
                    print(
                        f"b5 {setup.label} paced n={record.size}: p99 {record.baoxue} ms "
                        f"(raw {record.comparator} ms), lost {record.extra['lost']}",
                        flush=True,
                    )
        finally:
            await publisher.db.dispose()
            await consumer.db.dispose()


async def main_async(args: Any) -> list[Record]:
    """Every backend × consumer variant × size; the output file is rewritten after each record, so a run
    stopped by run.py's timeout still leaves what it measured."""
    records: list[Record] = []

    def keep(record: Record) -> None:
        records.append(record)
        write_records(args.out, records)

    with nats_server() as nats_url:
        for backend in args.backends.split(","):
            await bench_backend(
                backend.strip(),
                args.sizes,
                args.repeats,
                nats_url,
                txn_size=args.transaction_size,
                paced_events=args.paced_events,
                variants=args.consumers.split(","),
                keep=keep,
            )
    return records


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0] if __doc__ else "B5 events")
    parser.add_argument(
        "--backends",
        default=os.environ.get("BENCH_B5_BACKENDS", "postgresql,sqlite"),
        help="postgresql and/or sqlite (default: $BENCH_B5_BACKENDS or both)",
    )
    parser.add_argument(
        "--consumers",
        default=os.environ.get("BENCH_B5_CONSUMERS", ",".join(RUNNERS)),
        help=f"consumer variants to measure: {', '.join(RUNNERS)}",
    )
    parser.add_argument("--transaction-size", type=int, default=100, help="events per outbox transaction")
    parser.add_argument(
        "--paced-events",
        type=int,
        default=int(os.environ.get("BENCH_B5_PACED_EVENTS", "5000")),
        help="events in the paced latency run, at most (default: $BENCH_B5_PACED_EVENTS or 5000)",
    )
    args = parser.parse_args()
    records = asyncio.run(main_async(args))
    write_records(args.out, records)  # also when there was nothing to measure: an empty list


if __name__ == "__main__":
    main()
