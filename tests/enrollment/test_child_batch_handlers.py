"""The set-based child handlers have exactly the effect of the per-event ones, on generated streams.

The enrollment service applies a run of consecutive ChildRegistered / ChildUpdated /
ChildStatusChanged events with one call of a set-based handler (``make_batch_handlers``); the
per-event handler (``make_handlers``) is what the consumer falls back to. Each generated example is
a handful of children and student records (some unlinked, some sharing an ID blind index, some
already linked, some children already in the read model) and a stream of child events with repeats,
stale and out-of-order sequences, several events of one child, changed blind indexes and deceased
children. Both paths run on the same rows, each in a transaction that is rolled back, and must
leave the same children, the same student records and the same events in the outbox (StudentLinked,
StudentStatusChanged: data, sequence, trace id, order per record).

The stream is cut into fetch batches at random and each batch into runs of one event type, as the
consumer runner does. A last test sends one generated stream through NATS to the running service.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.registry import ChildRegistered, ChildStatusChanged, ChildUpdated
from baoxue.events.consumer import ReceivedEvent
from baoxue.events.envelope import Envelope, EventData
from baoxue.observability import reset_trace_id, set_trace_id
from baoxue.testing.plugin import RunningService, eventually
from enrollment.children.handlers import make_batch_handlers, make_handlers
from enrollment.children.models import ChildView
from enrollment.students.models import StudentRecord
from tests.enrollment.conftest import DISTRICT_A, DISTRICT_B, SCHOOL_A, SCHOOL_B, TOWN_A, start

EXAMPLES = 120
DISTRICTS = (DISTRICT_A, DISTRICT_B, None)
STATUSES = ("active", "deceased", "deceased", "missing", "moved_out", "duplicate")
RECORD_STATUSES = ("enrolled", "suspended", "graduated", "transferred_out", "dropped_out")
KEY = {ChildRegistered: "snapshot", ChildUpdated: "snapshot", ChildStatusChanged: "status"}


@dataclass
class World:
    children: list[str]
    blinds: list[str]
    existing: list[dict[str, Any]]  # rows of the children read model before the stream
    records: list[dict[str, Any]]  # student records before the stream
    events: list[ReceivedEvent[Any]]
    fetches: list[int]  # sizes of the fetched batches the stream is cut into


def _child_row(child_id: str, blind: str | None, sequence: int, district: str | None) -> dict[str, Any]:
    return {
        "child_id": child_id,
        "id_blind_index": blind,
        "birth_date": dt.date(2016, 3, 1),
        "hukou_school_district": district,
        "hukou_town": TOWN_A,
        "categories": "",
        "status": "active",
        "sequence": sequence,
        "updated_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }


def _record_row(
    rng: random.Random, blind: str, child_id: str | None, status: str, district: str | None
) -> dict[str, Any]:
    rid = str(uuid.uuid4())
    return {
        "id": rid,
        "student_number_kind": "G",
        "student_number_enc": "x",
        "student_number_index": f"n-{rid}",
        "id_number_enc": "x",
        "id_blind_index": blind,
        "child_id": child_id,
        "school_code": rng.choice((SCHOOL_A, SCHOOL_B)),
        "hukou_school_district": district,
        "grade": 3,
        "status": status,
        "status_since": dt.date(2026, 9, 1),
        "version": rng.randint(1, 3),
        "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "updated_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }


def generate(rng: random.Random) -> World:
    """One example: 1–4 children over 1–3 blind indexes, 0–3 records per blind index, 1–14 events."""
    tag = uuid.uuid4().hex[:12]
    blinds = [f"blind-{tag}-{i}" for i in range(rng.randint(1, 3))]
    children = [str(uuid.uuid4()) for _ in range(rng.randint(1, 4))]
    blind_of = {c: rng.choice(blinds) for c in children}
    existing = [
        _child_row(c, blind_of[c], rng.randint(0, 3), rng.choice(DISTRICTS))
        for c in children
        if rng.random() < 0.35
    ]
    records: list[dict[str, Any]] = []
    for blind in blinds:
        active_taken = False  # at most one active record per blind index (a unique index says so)
        for _ in range(rng.randint(0, 3)):
            status = rng.choice(RECORD_STATUSES)
            if status in ("enrolled", "suspended"):
                if active_taken:
                    status = "graduated"
                active_taken = True
            owner = rng.choice(children) if rng.random() < 0.25 else None
            records.append(_record_row(rng, blind, owner, status, rng.choice(DISTRICTS)))
    events: list[ReceivedEvent[Any]] = []
    traces = [uuid.uuid4().hex for _ in range(2)]
    for _ in range(rng.randint(1, 14)):
        if events and rng.random() < 0.15:  # the registry sends an event again (a new id, same content)
            again = rng.choice(events)
            env = Envelope.wrap(
                again.data,
                subject=again.envelope.subject,
                sequence=again.envelope.sequence,
                trace_id=rng.choice(traces),
            )
            events.append(ReceivedEvent(envelope=env, data=again.data))
            continue
        child = rng.choice(children)
        kind = rng.choices((ChildRegistered, ChildUpdated, ChildStatusChanged), (4, 3, 2))[0]
        data: EventData
        if kind is ChildStatusChanged:
            data = ChildStatusChanged(
                child_id=child,
                status=rng.choice(STATUSES),  # type: ignore[arg-type]
                previous_status="active",
                effective_date=dt.date(2026, 10, rng.randint(1, 28)),
                merged_into=rng.choice(children) if rng.random() < 0.2 else None,
            )
        else:
            if rng.random() < 0.2:
                blind_of[child] = rng.choice([*blinds, None])  # type: ignore[list-item]
            data = kind(
                child_id=child,
                id_blind_index=blind_of[child],
                birth_date=dt.date(2016, 3, 1),
                hukou_town=TOWN_A,
                hukou_school_district=rng.choice(DISTRICTS),
                status=rng.choice(("active", "active", "missing")),
                categories=rng.sample(["poverty", "disabled", "left_behind"], rng.randint(0, 2)),
            )
        env = Envelope.wrap(data, subject=child, sequence=rng.randint(1, 6), trace_id=rng.choice(traces))
        events.append(ReceivedEvent(envelope=env, data=data))
    fetches: list[int] = []
    left = len(events)
    while left:
        fetches.append(min(left, rng.randint(1, 8)))
        left -= fetches[-1]
    return World(children, blinds, existing, records, events, fetches)


def deceased_world(rng: random.Random) -> World:
    """A child with an active record reported deceased, then updated, in one run each: closes the record."""
    child, blind = str(uuid.uuid4()), f"blind-{uuid.uuid4().hex}"
    dead = ChildStatusChanged(
        child_id=child, status="deceased", previous_status="active", effective_date=dt.date(2026, 10, 2)
    )
    later = ChildUpdated(
        child_id=child, id_blind_index=blind, hukou_school_district=DISTRICT_B, status="deceased"
    )
    events = [
        ReceivedEvent(envelope=Envelope.wrap(d, subject=child, sequence=q, trace_id=uuid.uuid4().hex), data=d)
        for d, q in ((dead, 2), (dead, 2), (later, 3))
    ]
    existing = [_child_row(child, blind, 1, DISTRICT_A)]
    records = [_record_row(rng, blind, child, "enrolled", DISTRICT_A)]
    return World([child], [blind], existing, records, events, [3])


async def _set_up(session: AsyncSession, world: World) -> None:
    if world.existing:
        await session.execute(insert(ChildView.__table__), world.existing)  # type: ignore[attr-defined]
    if world.records:
        await session.execute(insert(StudentRecord.__table__), world.records)  # type: ignore[attr-defined]


async def _state(svc: RunningService, session: AsyncSession, world: World) -> dict[str, Any]:
    """What the handlers leave: children, records (their update times aside) and the outbox events."""
    c = ChildView.__table__  # type: ignore[attr-defined]
    s = StudentRecord.__table__  # type: ignore[attr-defined]
    children = (
        (await session.execute(select(c).where(c.c.child_id.in_(world.children)).order_by(c.c.child_id)))
        .mappings()
        .all()
    )
    records = (
        (await session.execute(select(s).where(s.c.id_blind_index.in_(world.blinds)).order_by(s.c.id)))
        .mappings()
        .all()
    )
    ids = [r["id"] for r in world.records]
    outbox = svc.spec.tables.events.outbox
    events = (
        await session.execute(
            select(outbox.c.aggregate_id, outbox.c.event_type, outbox.c.envelope)
            .where(outbox.c.aggregate_id.in_(ids))
            .order_by(outbox.c.position)
        )
    ).all()
    per_record: dict[str, list[tuple[str, Any, int, Any]]] = {}
    for aggregate, kind, raw in events:
        env = json.loads(raw)
        per_record.setdefault(aggregate, []).append((kind, env["data"], env["sequence"], env["traceid"]))
    return {
        "children": [{k: v for k, v in row.items() if k != "updated_at"} for row in children],
        "records": [{k: v for k, v in row.items() if k != "updated_at"} for row in records],
        "events": dict(sorted(per_record.items())),
    }


async def _one_by_one(svc: RunningService, world: World) -> dict[str, Any]:
    handlers = make_handlers(svc.ctx)
    async with svc.ctx.db.sessionmaker() as session, session.begin():
        await _set_up(session, world)
        for event in world.events:
            session.expire_all()  # as if each event had a transaction (a session) of its own
            token = set_trace_id(event.envelope.traceid)  # as the runner does for a per-event handler
            try:
                await handlers[KEY[type(event.data)]](session, event)
            finally:
                reset_trace_id(token)
        state = await _state(svc, session, world)
        await session.rollback()
    return state


async def _in_runs(svc: RunningService, world: World) -> dict[str, Any]:
    """Each fetched batch in one transaction (here: one for all), each run of one type in one call."""
    many = make_batch_handlers(svc.ctx)
    async with svc.ctx.db.sessionmaker() as session, session.begin():
        await _set_up(session, world)
        start_at = 0
        for size in world.fetches:
            fetched = world.events[start_at : start_at + size]
            start_at += size
            i = 0
            while i < len(fetched):
                j = i + 1
                while j < len(fetched) and type(fetched[j].data) is type(fetched[i].data):
                    j += 1
                await many[KEY[type(fetched[i].data)]](session, fetched[i:j])
                i = j
        state = await _state(svc, session, world)
        await session.rollback()
    return state


async def test_set_based_handlers_match_the_per_event_ones_on_generated_streams(start_service) -> None:
    svc = await start(start_service)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    linked = closed = repeats = 0
    for example in range(EXAMPLES):
        world = generate(rng) if example else deceased_world(rng)
        expected = await _one_by_one(svc, world)
        got = await _in_runs(svc, world)
        assert got == expected, f"seed {seed}, example {example}: {world}"
        linked += sum(".linked." in kind for v in expected["events"].values() for kind, *_ in v)
        closed += sum(".status_changed." in kind for v in expected["events"].values() for kind, *_ in v)
        repeats += len(world.events) - len({(e.data.child_id, e.envelope.sequence) for e in world.events})
    # the generator reaches what it is meant to: links, closed records, repeated sequences
    print(f"seed {seed}: {linked} linked, {closed} closed, {repeats} repeated sequences")
    assert linked > 0 and closed > 0 and repeats > 0, (seed, linked, closed, repeats)


async def test_two_events_of_one_child_in_one_run_apply_in_order(start_service) -> None:
    """The newer snapshot wins whatever the order; the records follow the last applied district."""
    svc = await start(start_service)
    child, blind = str(uuid.uuid4()), f"blind-{uuid.uuid4().hex}"
    record = _record_row(random.Random(1), blind, None, "enrolled", None)

    def snapshot(sequence: int, district: str) -> ReceivedEvent[Any]:
        data = ChildUpdated(child_id=child, id_blind_index=blind, hukou_school_district=district)
        return ReceivedEvent(
            envelope=Envelope.wrap(data, subject=child, sequence=sequence, trace_id="0" * 32), data=data
        )

    for events, district in (
        ([snapshot(2, DISTRICT_A), snapshot(3, DISTRICT_B)], DISTRICT_B),
        ([snapshot(3, DISTRICT_B), snapshot(2, DISTRICT_A)], DISTRICT_B),  # the stale one is ignored
        ([snapshot(2, DISTRICT_A), snapshot(2, DISTRICT_B)], DISTRICT_A),  # same sequence: the first
    ):
        world = World([child], [blind], [], [record], events, [len(events)])
        got = await _in_runs(svc, world)
        assert got == await _one_by_one(svc, world)
        [row] = got["children"]
        assert row["hukou_school_district"] == district
        [linked] = got["records"]
        assert (linked["child_id"], linked["hukou_school_district"]) == (child, district)
        # linked by the first applied event: StudentLinked names that event's district
        [(kind, data, sequence, _trace)] = got["events"][record["id"]]
        assert "linked" in kind and data["hukou_school_district"] == events[0].data.hukou_school_district
        assert sequence == record["version"] + 1


async def test_a_stream_through_the_consumer_matches_one_by_one(start_service, event_publisher) -> None:
    """The running service (set-based handlers registered) ends where the per-event handlers do."""
    svc = await start(start_service)
    rng = random.Random(20261127)
    world = generate(rng)
    while len(world.events) < 10 or not world.records:
        world = generate(rng)
    expected = await _one_by_one(svc, world)
    async with svc.ctx.db.transaction() as session:
        await _set_up(session, world)
    for event in world.events:
        env = event.envelope
        await event_publisher.publish(event.data, subject=env.subject, sequence=env.sequence, event_id=env.id)
    inbox = svc.spec.tables.events.inbox

    async def consumed() -> bool:
        async with svc.ctx.db.transaction() as s:
            ids = {e.envelope.id for e in world.events}
            return len(
                (await s.execute(select(inbox.c.event_id).where(inbox.c.event_id.in_(ids)))).all()
            ) == len(ids)

    await eventually(consumed, timeout=20)
    async with svc.ctx.db.transaction() as session:
        got = await _state(svc, session, world)
    # the runner sets no trace id around a set-based call; the published trace ids are the events' own
    assert got["children"] == expected["children"]
    assert got["records"] == expected["records"]
    strip = {k: [(kind, data, seq) for kind, data, seq, _t in v] for k, v in expected["events"].items()}
    assert {k: [(kind, data, seq) for kind, data, seq, _t in v] for k, v in got["events"].items()} == strip
