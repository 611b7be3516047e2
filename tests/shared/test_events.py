"""The event path against a real NATS server and a real database: outbox → relay → JetStream → inbox."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gc
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from nats.aio.msg import Msg
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.db import Database, sync_url
from baoxue.events.bus import EventBus
from baoxue.events.consumer import (
    Backlog,
    ConsumerRunner,
    PermanentEventError,
    ReceivedEvent,
    Subscription,
    backlogs,
)
from baoxue.events.envelope import Envelope, EnvelopeBatch, EventData, stream_name
from baoxue.events.outbox import COPY_FROM_ROWS, Outbox
from baoxue.events.relay import OutboxRelay
from baoxue.events.tables import EventTables, define_event_tables
from baoxue.testing.plugin import eventually


class ProbeHappened(EventData):
    """A test-only contract, published on the registry's stream of the test's namespace."""

    service: ClassVar[str] = "registry"
    aggregate: ClassVar[str] = "probe"
    event: ClassVar[str] = "happened"
    n: int


@dataclass
class Probe:
    db: Database
    tables: EventTables
    effects: Table


@pytest_asyncio.fixture
async def probe(baoxue_infra, request) -> AsyncIterator[Probe]:
    """A database of its own with the library's event tables and an ``effects`` table (no unique key,
    so a second application of one event would show up as a second row)."""
    metadata = MetaData()
    tables = define_event_tables(metadata)
    effects = Table(
        "effects",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("n", Integer),
        Column("by", String(20)),
    )
    url = baoxue_infra.database_url(f"probe{abs(hash(request.node.name)) % 10**8}")
    from sqlalchemy import create_engine

    engine = create_engine(sync_url(url))
    metadata.create_all(engine)
    engine.dispose()
    db = Database(url)
    yield Probe(db, tables, effects)
    await db.dispose()


@pytest_asyncio.fixture
async def registry_bus(baoxue_infra, event_namespace) -> AsyncIterator[Callable[..., Awaitable[EventBus]]]:
    """A bus of the test's namespace with the registry's stream, connected on request (``await
    registry_bus(**settings)``); the stream is deleted and the bus closed after the test, when the
    test has stopped what it started on it."""
    made: list[EventBus] = []

    async def make(**settings: Any) -> EventBus:
        bus = EventBus(baoxue_infra.nats_url, namespace=event_namespace, client_name="t", **settings)
        made.append(bus)
        await bus.connect()
        await bus.ensure_streams(("registry",))
        return bus

    yield make
    for bus in made:
        await bus.delete_streams(("registry",))
        await bus.close()


async def _fetch_as(
    runner: ConsumerRunner, sub: Subscription, bus: EventBus, event_namespace: str, batch: int
) -> list[Msg]:
    """Up to ``batch`` messages fetched through ``runner``'s durable consumer of ``sub``, as the runner
    would fetch them (the test then hands them to ``handle_batch`` itself)."""
    await runner.ensure_consumer(sub)
    psub = await bus.js.pull_subscribe_bind(
        durable=runner.durable_name(sub), stream=stream_name(event_namespace, "registry")
    )
    return await psub.fetch(batch, timeout=5)


async def _write(probe: Probe, outbox: Outbox, numbers: range) -> None:
    async with probe.db.transaction() as session:
        await outbox.add_many(session, [(ProbeHappened(n=n), f"probe-{n}", 1) for n in numbers])


def _effect_handler(probe: Probe, *, flaky: float = 0.0, rng: random.Random | None = None):
    async def handle(session: AsyncSession, event: ReceivedEvent[ProbeHappened]) -> None:
        await session.execute(insert(probe.effects).values(n=event.data.n, by="consumer"))
        if rng is not None and rng.random() < flaky:
            raise ConnectionError("simulated transient failure after the effect (rolled back)")

    return handle


async def _counts(probe: Probe) -> tuple[int, int]:
    async with probe.db.transaction() as s:
        total = (await s.execute(select(func.count()).select_from(probe.effects))).scalar_one()
        distinct = (await s.execute(select(func.count(func.distinct(probe.effects.c.n))))).scalar_one()
    return int(total), int(distinct)


async def test_outbox_rows_are_the_same_by_insert_and_by_copy(probe):
    """A few events go by INSERT, a bulk (from COPY_FROM_ROWS on) by COPY on PostgreSQL: the rows and their
    envelopes are the same either way, each envelope byte for byte what ``Envelope`` itself writes."""
    outbox = Outbox(probe.tables)
    bulk = COPY_FROM_ROWS + 5
    async with probe.db.transaction() as session:
        few = await outbox.add_many(session, [(ProbeHappened(n=n), f"probe-{n}", n) for n in range(3)])
        many = await outbox.add_many(
            session, [(ProbeHappened(n=n), f"probe-{n}", n) for n in range(3, 3 + bulk)]
        )
    async with probe.db.transaction() as session:
        rows = (await session.execute(select(probe.tables.outbox).order_by("position"))).all()
    assert [r.event_id for r in rows] == [*few, *many]
    for n, row in enumerate(rows):
        env = Envelope.model_validate_json(row.envelope)
        assert env.model_dump_json() == row.envelope
        assert (env.id, env.type, env.subject, env.sequence, env.data) == (
            row.event_id,
            ProbeHappened.event_type(),
            f"probe-{n}",
            n,
            {"n": n},
        )
        assert (row.subject, row.event_type, row.aggregate_id, row.published_at, row.attempts) == (
            ProbeHappened.relative_subject(),
            ProbeHappened.event_type(),
            f"probe-{n}",
            None,
            0,
        )
        assert row.created_at.tzinfo is not None


def test_envelope_batch_writes_what_envelope_writes():
    when = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)
    data = ProbeHappened(n=7)
    event_id, text = EnvelopeBatch(trace_id="0af7651916cd43dd8448eb211c80319c", time=when).dump(
        data, subject='probe-"é', sequence=2
    )
    expected = Envelope.wrap(
        data, subject='probe-"é', sequence=2, trace_id="0af7651916cd43dd8448eb211c80319c"
    )
    assert text == expected.model_copy(update={"id": event_id, "time": when}).model_dump_json()
    with pytest.raises(ValueError):
        EnvelopeBatch(trace_id=None).dump(data, subject="s", sequence=-1)


async def test_event_in_rolled_back_transaction_is_never_published(probe, registry_bus):
    bus = await registry_bus()
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, bus, outbox)
    with pytest.raises(RuntimeError):
        async with probe.db.transaction() as session:
            await outbox.add(session, ProbeHappened(n=1), subject="probe-1", sequence=1)
            raise RuntimeError("the state change failed")
    await _write(probe, outbox, range(2, 3))
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0
    info = await bus.stream_info("registry")
    assert info.state.messages == 1


class LosingAcks(ConsumerRunner):
    """A consumer that 'loses' the ack of some messages after applying them, forcing redeliveries."""

    def __init__(self, *args, lose_ack: float, rng: random.Random, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lose_ack, self.rng = lose_ack, rng
        self.lost_acks = 0

    async def ack(self, msg: Msg) -> None:
        if self.rng.random() < self.lose_ack:
            self.lost_acks += 1
            return
        await super().ack(msg)


@pytest.mark.slow
async def test_thousand_events_applied_exactly_once_through_redeliveries_and_a_nats_restart(
    probe, event_namespace, nats_server_factory
):
    server = nats_server_factory()
    rng = random.Random(7)
    publisher = EventBus(server.url, namespace=event_namespace, client_name="pub")
    subscriber = EventBus(server.url, namespace=event_namespace, client_name="sub")
    await publisher.connect()
    await subscriber.connect()
    await publisher.ensure_streams(("registry",))
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, publisher, outbox, batch_size=100, publish_timeout=2.0)
    runner = LosingAcks(
        "probe",
        probe.db,
        probe.tables,
        subscriber,
        [Subscription("registry", {ProbeHappened: _effect_handler(probe, flaky=0.1, rng=rng)})],
        max_deliver=100,
        ack_wait=1.0,
        batch=50,
        lose_ack=0.1,
        rng=rng,
    )
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(runner.run())]
    try:
        for start in range(0, 500, 100):
            await _write(probe, outbox, range(start, start + 100))
        await eventually(lambda: _counts_at_least(probe, 200), timeout=30)
        await asyncio.to_thread(server.stop)  # graceful stop in the middle of the stream
        for start in range(500, 1000, 100):  # written while NATS is away: they wait in the outbox
            await _write(probe, outbox, range(start, start + 100))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(server.start)
        await eventually(lambda: _counts_at_least(probe, 1000), timeout=90, interval=0.2)
        await asyncio.sleep(2.5)  # time for any straggling redelivery to (not) apply twice
        total, distinct = await _counts(probe)
        assert (total, distinct) == (1000, 1000)
        assert runner.duplicates > 0, "the test must actually force redeliveries"
        assert runner.lost_acks > 0
        assert subscriber.generation >= 1, "the consumer must have lived through a reconnect"
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await publisher.close()
        await subscriber.close()


async def _counts_at_least(probe: Probe, n: int) -> bool:
    total, _ = await _counts(probe)
    return total >= n


async def test_relay_killed_between_puback_and_mark_publishes_again_and_effect_applies_once(
    probe, event_namespace, baoxue_infra
):
    # A tiny duplicate window, so JetStream itself keeps the second copy: only the inbox can save us.
    publisher = EventBus(
        baoxue_infra.nats_url, namespace=event_namespace, client_name="pub", duplicate_window_seconds=0.2
    )
    subscriber = EventBus(baoxue_infra.nats_url, namespace=event_namespace, client_name="sub")
    await publisher.connect()
    await subscriber.connect()
    await publisher.ensure_streams(("registry",))
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, publisher, outbox)
    runner = ConsumerRunner(
        "probe",
        probe.db,
        probe.tables,
        subscriber,
        [Subscription("registry", {ProbeHappened: _effect_handler(probe)})],
    )
    try:
        await _write(probe, outbox, range(5))
        async with probe.db.transaction() as session:  # the relay publishes ... and dies before marking
            rows = (await session.execute(select(probe.tables.outbox))).all()
            assert len(await relay._publish(rows)) == 5
        await asyncio.sleep(0.5)
        assert await relay.publish_pending() == 5  # after restart: published again
        info = await publisher.stream_info("registry")
        assert info.state.messages == 10
        task = asyncio.create_task(runner.run())
        await eventually(lambda: _fetched_all(runner, 10), timeout=20)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert await _counts(probe) == (5, 5)
        assert runner.duplicates == 5
    finally:
        await publisher.delete_streams(("registry",))
        await publisher.close()
        await subscriber.close()


async def _fetched_all(runner: ConsumerRunner, n: int) -> bool:
    return runner.applied + runner.duplicates >= n


async def test_poison_event_is_dead_lettered_without_holding_up_the_rest(probe, registry_bus):
    bus = await registry_bus()
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, bus, outbox)
    broken = {"enabled": True}

    async def handle(session: AsyncSession, event: ReceivedEvent[ProbeHappened]) -> None:
        if event.data.n == 3 and broken["enabled"]:
            raise ValueError("王小明 110101201001011234")  # personal data in an error must not be stored
        if event.data.n == 7:
            raise PermanentEventError("child_unknown")
        await session.execute(insert(probe.effects).values(n=event.data.n, by="consumer"))

    runner = ConsumerRunner(
        "probe",
        probe.db,
        probe.tables,
        bus,
        [Subscription("registry", {ProbeHappened: handle})],
        max_deliver=3,
        # A delivery that never reaches the handler (seen about once in 15 loaded runs: the third
        # delivery of event 3 did not come within 30 s) comes again after ack_wait; the default 30 s
        # is the test's whole window. This test is about dead-lettering, so a short ack_wait.
        ack_wait=5.0,
    )
    runner_task = asyncio.create_task(runner.run())
    try:
        await _write(probe, outbox, range(10))
        await relay.publish_pending()
        await eventually(lambda: _counts_at_least(probe, 8), timeout=30)
        await eventually(lambda: _dead_letters_at_least(probe, 2), timeout=30)
        table = probe.tables.dead_letter
        async with probe.db.transaction() as s:
            rows = (await s.execute(select(table).order_by(table.c.id))).mappings().all()
        codes = sorted(r["error_code"] for r in rows)
        assert codes == ["child_unknown", "delivery_limit"]
        limit_row = next(r for r in rows if r["error_code"] == "delivery_limit")
        # At least the limit: under load a delivery can outlive the short ack_wait and be redelivered
        # meanwhile, so JetStream's count may pass 3 before the consumer sees it (seen once in CI: 4).
        assert limit_row["deliveries"] >= 3
        for r in rows:
            assert "110101" not in r["error_type"] + r["error_code"] + r["envelope"]
            assert "王小明" not in r["error_type"] + r["error_code"] + r["envelope"]
        # After a fix, an operator replays the dead letter; it applies once.
        broken["enabled"] = False
        assert await runner.replay_dead_letter(limit_row["id"]) == "applied"
        assert await runner.replay_dead_letter(limit_row["id"]) == "already_applied"
        async with probe.db.transaction() as s:
            ns = sorted((await s.execute(select(probe.effects.c.n))).scalars())
        assert ns == [0, 1, 2, 3, 4, 5, 6, 8, 9]
        async with probe.db.transaction() as s:
            replayed = (
                await s.execute(select(table.c.replayed_at).where(table.c.id == limit_row["id"]))
            ).scalar_one()
        assert replayed is not None
    finally:
        runner_task.cancel()
        await asyncio.gather(runner_task, return_exceptions=True)


async def _dead_letters_at_least(probe: Probe, n: int) -> bool:
    async with probe.db.transaction() as s:
        count = (await s.execute(select(func.count()).select_from(probe.tables.dead_letter))).scalar_one()
    return int(count) >= n


_ = update


async def test_a_batch_applies_new_events_once_skipping_applied_ones_and_in_batch_repeats(
    probe, event_namespace, registry_bus
):
    bus = await registry_bus()
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, bus, outbox)
    sub = Subscription("registry", {ProbeHappened: _effect_handler(probe)})
    runner = ConsumerRunner("probe", probe.db, probe.tables, bus, [sub], batch=10)
    await _write(probe, outbox, range(4))
    assert await relay.publish_pending() == 4
    msgs = await _fetch_as(runner, sub, bus, event_namespace, 10)
    assert len(msgs) == 4
    await runner.handle_batch(sub, msgs[:1])  # event 0 applied before
    assert (runner.applied, runner.duplicates) == (1, 0)
    # event 0 again, and event 2 twice in the same batch (a redelivery that overtook its ack);
    # a redelivery arrives as a message object of its own
    again = [dataclasses.replace(m, _ackd=False) for m in (msgs[0], msgs[2])]
    await runner.handle_batch(sub, [again[0], *msgs[1:], again[1]])
    assert (runner.applied, runner.duplicates) == (4, 2)
    async with probe.db.transaction() as s:
        ns = sorted((await s.execute(select(probe.effects.c.n))).scalars())
        inbox = (await s.execute(select(func.count()).select_from(probe.tables.inbox))).scalar_one()
    assert ns == [0, 1, 2, 3] and inbox == 4


async def test_relay_wakes_for_a_commit_made_during_its_round_and_keeps_one_jetstream_context(
    probe, registry_bus
):
    bus = await registry_bus()
    outbox = Outbox(probe.tables)

    class CommitDuringEmptyRound(OutboxRelay):
        """The first round finds nothing; a writer commits just after that round read the outbox."""

        rounds = 0

        async def publish_pending(self) -> int:
            published = await super().publish_pending()
            self.rounds += 1
            if self.rounds == 1:
                assert published == 0
                await _write(probe, outbox, range(1))
            return published

    # A poll interval far longer than the test: only the commit's wake-up can publish the event in time.
    relay = CommitDuringEmptyRound(probe.db, probe.tables, bus, outbox, poll_interval=60.0)
    subscriptions = len(bus.nc._subs)  # type: ignore[union-attr]
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _published_at_least(relay, 1), timeout=10)
        for start in range(1, 40, 3):  # more rounds: each publishes through the same context
            await _write(probe, outbox, range(start, start + 3))
            await eventually(lambda n=start + 3: _published_at_least(relay, n), timeout=10)
        assert relay.rounds > 10
        assert len(bus.nc._subs) <= subscriptions + 1  # type: ignore[union-attr]  # one reply inbox
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _published_at_least(relay: OutboxRelay, n: int) -> bool:
    return relay.published_total >= n


async def _unmarked(probe: Probe) -> int:
    """Outbox rows not marked published yet."""
    t = probe.tables.outbox
    async with probe.db.transaction() as s:
        return int((await s.execute(select(func.count()).where(t.c.published_at.is_(None)))).scalar_one())


async def test_rows_jetstream_does_not_acknowledge_count_an_attempt_and_are_published_later(
    probe, baoxue_infra, event_namespace
):
    """No stream takes the rows' subjects yet: none is acknowledged, each row counts one attempt and stays
    unpublished; once the stream exists the next round publishes them all."""
    bus = EventBus(baoxue_infra.nats_url, namespace=event_namespace, client_name="t")
    await bus.connect()
    try:
        outbox = Outbox(probe.tables)
        relay = OutboxRelay(probe.db, probe.tables, bus, outbox, batch_size=5, publish_timeout=5.0)
        await _write(probe, outbox, range(3))
        assert await relay.publish_pending() == 0
        t = probe.tables.outbox
        async with probe.db.transaction() as s:
            rows = (await s.execute(select(t.c.attempts, t.c.published_at).order_by(t.c.position))).all()
        assert [tuple(r) for r in rows] == [(1, None)] * 3

        await bus.ensure_streams(("registry",))
        assert await relay.publish_pending() == 3
        await eventually(lambda: _unmarked_is(probe, 0), timeout=10)
    finally:
        await bus.delete_streams(("registry",))
        await bus.close()


async def _unmarked_is(probe: Probe, count: int) -> bool:
    return await _unmarked(probe) == count


async def _numbers_in_stream(bus: EventBus, event_namespace: str, count: int) -> list[int]:
    """The ``n`` of the stream's first ``count`` probe events, in stream order."""
    psub = await bus.js.pull_subscribe(f"{event_namespace}.registry.>", durable="check")
    seen: list[int] = []
    while len(seen) < count:
        for msg in await psub.fetch(count, timeout=5):
            seen.append(Envelope.model_validate_json(msg.data).data["n"])
            await msg.ack()
    return seen


async def test_an_event_delivered_past_the_limit_without_an_ack_is_still_applied(
    probe, event_namespace, registry_bus
):
    """Processes killed with the event in hand (here: a subscriber that fetches and never acks) use up
    deliveries without a failure; JetStream must not drop the event silently after max_deliver."""
    bus = await registry_bus()
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, bus, outbox)
    sub = Subscription("registry", {ProbeHappened: _effect_handler(probe)})
    runner = ConsumerRunner("probe", probe.db, probe.tables, bus, [sub], max_deliver=2, ack_wait=1.0)
    await runner.ensure_consumer(sub)
    runner_task = None
    try:
        await _write(probe, outbox, range(1))
        await relay.publish_pending()
        dying = await bus.js.pull_subscribe_bind(
            durable=runner.durable_name(sub), stream=stream_name(event_namespace, "registry")
        )
        deliveries = []
        for _ in range(4):  # each fetch is one delivery that ends without an ack
            (msg,) = await dying.fetch(1, timeout=5)
            deliveries.append(msg.metadata.num_delivered)
        await dying.unsubscribe()
        assert deliveries == [1, 2, 3, 4]
        runner_task = asyncio.create_task(runner.run())
        await eventually(lambda: _counts_at_least(probe, 1), timeout=30)
        assert await _counts(probe) == (1, 1)
        assert not await _dead_letters_at_least(probe, 1)
    finally:
        if runner_task is not None:
            runner_task.cancel()
            await asyncio.gather(runner_task, return_exceptions=True)


async def test_a_batch_slower_than_ack_wait_is_not_redelivered_to_another_replica(probe, registry_bus):
    """Two replicas bind one durable; the first takes a batch and needs 3 × ack_wait for it. Its
    messages are kept in progress, so the second replica is never handed them meanwhile."""
    bus = await registry_bus()
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, bus, outbox)
    working = asyncio.Event()
    effect = _effect_handler(probe)

    async def slow(session: AsyncSession, event: ReceivedEvent[ProbeHappened]) -> None:
        await effect(session, event)
        if event.data.n == 0:
            working.set()
            await asyncio.sleep(3.0)

    def replica(handler) -> ConsumerRunner:
        sub = Subscription("registry", {ProbeHappened: handler})
        return ConsumerRunner("probe", probe.db, probe.tables, bus, [sub], ack_wait=1.0, batch=10)

    first, second = replica(slow), replica(effect)
    tasks = [asyncio.create_task(first.run())]
    try:
        await _write(probe, outbox, range(5))
        await relay.publish_pending()
        await asyncio.wait_for(working.wait(), 30)
        tasks.append(asyncio.create_task(second.run()))
        await eventually(lambda: _counts_at_least(probe, 5), timeout=30)
        await asyncio.sleep(2.5)
        assert await _counts(probe) == (5, 5)
        # The second replica may take events the first one's fetch did not hold; it must not be handed
        # any the first one is still working on (that would be a skipped duplicate).
        assert first.applied + second.applied == 5
        assert (first.duplicates, second.duplicates) == (0, 0)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ProbeNoted(EventData):
    """A second test-only contract on the registry's stream, with no batch handler."""

    service: ClassVar[str] = "registry"
    aggregate: ClassVar[str] = "probe"
    event: ClassVar[str] = "noted"
    n: int


def test_a_batch_handler_needs_a_per_event_handler_to_fall_back_to():
    async def on_many(session: AsyncSession, events: list[ReceivedEvent[ProbeHappened]]) -> None:
        return None

    with pytest.raises(ValueError, match="no per-event handler"):
        Subscription("registry", {ProbeNoted: on_many}, {ProbeHappened: on_many})  # type: ignore[dict-item]


async def test_a_batch_handler_applies_each_run_of_its_type_in_stream_order_and_falls_back_per_event(
    probe, event_namespace, registry_bus
):
    """Set-based handlers (``Subscription.batch_handlers``): a run of consecutive events of one type is
    applied in one call, other types in between keep their place; repeats are left out as before; and
    when the batch fails, the per-event handler applies each event once instead."""
    bus = await registry_bus()
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, bus, outbox)
    calls: list[tuple[str, list[int]]] = []
    fail_batch_with = {9}

    async def on_one(session: AsyncSession, event: ReceivedEvent[ProbeHappened | ProbeNoted]) -> None:
        calls.append(("one", [event.data.n]))
        await session.execute(insert(probe.effects).values(n=event.data.n, by="one"))

    async def on_many(session: AsyncSession, events: list[ReceivedEvent[ProbeHappened]]) -> None:
        ns = [e.data.n for e in events]
        calls.append(("many", ns))
        await session.execute(insert(probe.effects), [{"n": n, "by": "many"} for n in ns])
        if fail_batch_with & set(ns):
            raise ConnectionError("simulated failure after the set-based effect (rolled back)")

    sub = Subscription(
        "registry", {ProbeHappened: on_one, ProbeNoted: on_one}, batch_handlers={ProbeHappened: on_many}
    )
    runner = ConsumerRunner("probe", probe.db, probe.tables, bus, [sub], batch=20)
    kinds = [ProbeHappened, ProbeHappened, ProbeNoted, ProbeHappened, ProbeHappened, ProbeHappened]
    async with probe.db.transaction() as session:
        await outbox.add_many(session, [(k(n=n), f"probe-{n}", 1) for n, k in enumerate(kinds)])
    await _write(probe, outbox, range(8, 11))  # three more ProbeHappened: 8, 9 (fails), 10
    assert await relay.publish_pending() == 9
    msgs = await _fetch_as(runner, sub, bus, event_namespace, 20)
    assert len(msgs) == 9
    await runner.handle_batch(sub, msgs[:1])  # event 0 applied before
    # event 0 again (a redelivery is a message object of its own), event 4 twice in one batch
    again = [dataclasses.replace(m, _ackd=False) for m in (msgs[0], msgs[4])]
    await runner.handle_batch(sub, [again[0], *msgs[1:6], again[1]])
    assert calls == [("many", [0]), ("many", [1]), ("one", [2]), ("many", [3, 4, 5])]
    assert (runner.applied, runner.duplicates) == (6, 2)
    calls.clear()
    await runner.handle_batch(sub, msgs[6:])  # 8, 9, 10: the set-based call fails, rolled back
    assert calls == [("many", [8, 9, 10]), ("one", [8]), ("one", [9]), ("one", [10])]
    async with probe.db.transaction() as s:
        rows = (
            await s.execute(select(probe.effects.c.n, probe.effects.c.by).order_by(probe.effects.c.id))
        ).all()
        inbox = (await s.execute(select(func.count()).select_from(probe.tables.inbox))).scalar_one()
    assert [tuple(r) for r in rows] == [
        (0, "many"),
        (1, "many"),
        (2, "one"),
        (3, "many"),
        (4, "many"),
        (5, "many"),
        (8, "one"),
        (9, "one"),
        (10, "one"),
    ]
    assert inbox == 9 and runner.applied == 9


async def test_the_relay_overlapping_marks_with_the_next_round_publishes_each_row_once_in_order(
    probe, event_namespace, registry_bus
):
    """In ``run()`` a round's mark overlaps the next round's select and publish: rows being marked must not
    be selected and published again, and the stream keeps the order of writing. The duplicate window is
    tiny, so a second publish of a row would be a second message in the stream."""
    bus = await registry_bus(duplicate_window_seconds=0.2)
    outbox = Outbox(probe.tables)

    class SlowMark(OutboxRelay):
        """Marks take a while, so the next rounds run while a mark is in flight."""

        async def _mark(self, session: AsyncSession, rows, acked) -> None:  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.05)
            await super()._mark(session, rows, acked)

    relay = SlowMark(probe.db, probe.tables, bus, outbox, batch_size=3)
    for start in range(0, 90, 3):
        await _write(probe, outbox, range(start, start + 3))
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _published_at_least(relay, 90), timeout=30)
        await asyncio.sleep(0.5)  # anything published twice would have arrived by now
        info = await bus.stream_info("registry")
        assert info.state.messages == 90
        assert await _numbers_in_stream(bus, event_namespace, 90) == list(range(90))
        assert await _unmarked(probe) == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_on_sqlite_the_relay_keeps_publishing_while_its_marks_wait_for_the_write_lock(
    probe, event_namespace, registry_bus
):
    """SQLite has one write lock, shared with every writer of the service. In ``run()`` the relay hands
    acknowledged rows to a marker task and goes on publishing: here another connection holds the write
    lock for 2 s, and all 30 rows are published meanwhile (a mark per round on the critical path let at
    most two rounds of 3 through), none twice, in order; once the lock is released, all are marked."""
    if probe.db.dialect != "sqlite":
        pytest.skip("PostgreSQL marks in the round's own transaction, row locks instead of one write lock")
    bus = await registry_bus(duplicate_window_seconds=0.2)
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, bus, outbox, batch_size=3)
    for start in range(0, 30, 3):
        await _write(probe, outbox, range(start, start + 3))
    path = make_url(probe.db.url).database
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long writer transaction would hold it
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _published_at_least(relay, 30), timeout=1.5)
        assert await _unmarked(probe) == 30  # published, not yet marked: the lock is still held
        await asyncio.sleep(max(0.0, 2.0 - 1.5))
        holder.execute("COMMIT")

        async def all_marked() -> bool:
            return await _unmarked(probe) == 0

        await eventually(all_marked, timeout=15)
        info = await bus.stream_info("registry")
        assert info.state.messages == 30
        assert await _numbers_in_stream(bus, event_namespace, 30) == list(range(30))
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_stopped_consumer_leaves_nothing_for_closing_the_connection_to_wait_for(
    probe, registry_bus, caplog
):
    """A service's shutdown: its consumers are cancelled mid-fetch, then the bus drains and closes. The
    pull subscriptions must be gone by then: a cancelled fetch leaves its subscription's queue unfinished,
    and the drain waited for it until its timeout, then left nats-py's gathered drain future unretrieved
    (an asyncio error in the log of every service on every stop)."""
    bus = await registry_bus()
    consumers_bus = await registry_bus()  # closed by the test; the fixture deletes the stream through `bus`
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, bus, outbox)
    sub = Subscription("registry", {ProbeHappened: _effect_handler(probe)})
    runner = ConsumerRunner(
        "probe", probe.db, probe.tables, consumers_bus, [sub], batch=10, fetch_timeout=0.2
    )
    await _write(probe, outbox, range(3))
    assert await relay.publish_pending() == 3
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: loop_errors.append(context))
    consuming = asyncio.create_task(runner.run())
    await eventually(lambda: _counts_at_least(probe, 3))
    await asyncio.sleep(0.3)  # into an idle fetch
    consuming.cancel()
    await asyncio.gather(consuming, return_exceptions=True)
    await consumers_bus.close()
    gc.collect()  # an unretrieved future reports itself when collected
    assert consumers_bus.nc is not None and consumers_bus.nc.is_closed
    assert [r.getMessage() for r in caplog.records if r.name == "baoxue.events.bus"] == []
    assert loop_errors == []


async def test_backlogs_count_the_events_a_consumer_has_not_applied(probe, event_namespace, registry_bus):
    """What ``baoxue pii reindex`` asks before it changes the blind-index key: per durable consumer, the
    events not yet delivered and those delivered but not acknowledged, from the server's state."""
    bus = await registry_bus()
    outbox = Outbox(probe.tables)
    relay = OutboxRelay(probe.db, probe.tables, bus, outbox)
    sub = Subscription("registry", {ProbeHappened: _effect_handler(probe)})
    assert await backlogs(bus, "probe", [sub]) == [Backlog("probe__from__registry", "registry", 0)]

    await _write(probe, outbox, range(5))
    assert await relay.publish_pending() == 5
    [never] = await backlogs(bus, "probe", [sub])
    assert never.undelivered is None and not never.drained
    assert "probe__from__registry was never created" in str(never)

    runner = ConsumerRunner("probe", probe.db, probe.tables, bus, [sub], batch=10)
    first = await _fetch_as(runner, sub, bus, event_namespace, 2)
    [behind] = await backlogs(bus, "probe", [sub])
    assert (behind.undelivered, behind.unacknowledged, behind.drained) == (3, 2, False)
    assert "3 not yet delivered to probe__from__registry, 2 delivered and not yet applied" in str(behind)

    await runner.handle_batch(sub, first)
    await runner.handle_batch(sub, await _fetch_as(runner, sub, bus, event_namespace, 10))

    async def drained() -> bool:
        return all(b.drained for b in await backlogs(bus, "probe", [sub]))

    await eventually(drained)
    assert await _counts(probe) == (5, 5)
