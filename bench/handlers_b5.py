"""B5, the real service: events/s the enrollment service's consumer applies, per-event vs set-based handlers.

Standalone tool (its name does not match ``b<N>_*.py``, so ``make bench`` / ``bench/run.py`` do not run
it: it measures one service's handlers against themselves, not Baoxue against a comparator).

What is measured: ``size`` realistic ``ChildRegistered`` events (``b5.data.make_events``: a feed of
new children) are published once onto the registry's stream; the enrollment service's own
``ConsumerRunner`` with its real subscriptions (``enrollment.consumers``), on a migrated enrollment
database of its own, consumes them from the start of the stream. Before each run the read model,
the student records, the inbox and the outbox are emptied and ``--records`` × size unlinked student
records (学籍 registered before the registry knew the child) are inserted with the blind indexes of
that share of the children, so the handlers also link them and publish StudentLinked, as in a real
September. Throughput = events ÷ seconds from the runner's start to the commit of the last event's
effect. "set-based" is the service as configured (``batch_handlers``); "per-event" the same
subscription without them (what the runner falls back to). The two alternate, ``--repeats`` each,
and each run is checked: every child in the read model, every record linked, one StudentLinked per
record, no dead letter.

    .venv/bin/python bench/handlers_b5.py --sizes 20000 --repeats 3 --out /tmp/handlers_b5.json
    .venv/bin/python bench/handlers_b5.py --sizes 2000 --repeats 1 --backends sqlite --records 0 --out /tmp/h.json

Records: ``baoxue`` = set-based events/s, ``comparator`` = per-event events/s, ``ratio`` = their quotient.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/, for ``harness`` and ``b5``

from b5.data import make_events
from harness import (
    PeakMemory,
    Record,
    argument_parser,
    nats_server,
    paired_medians_async,
    ratio,
    scratch_database,
    write_records,
)
from sqlalchemy import delete, func, insert, select

from baoxue.app import build_context
from baoxue.catalog import load_service
from baoxue.events.consumer import ConsumerRunner, Subscription
from baoxue.events.envelope import Envelope, stream_name
from baoxue.migrations import upgrade
from baoxue.service import ServiceContext


def _record_rows(blinds: list[str]) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "id": f"00000000-0000-4000-8000-{n:012d}",
            "student_number_kind": "G",
            "student_number_enc": "bench",
            "student_number_index": f"bench-number-{n}",
            "id_number_enc": "bench",
            "id_blind_index": blind,
            "child_id": None,
            "school_code": "37040600101001",
            "hukou_school_district": None,
            "grade": 3,
            "status": "enrolled",
            "status_since": dt.date(2026, 9, 1),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for n, blind in enumerate(blinds)
    ]


class Bench:
    def __init__(self, ctx: ServiceContext, size: int, records: float) -> None:
        self.ctx = ctx
        self.size = size
        self.events = make_events(size, seed=secrets.token_hex(4))
        # evenly spread over the stream: the n-th child has a record when the running share steps up
        self.linked_blinds = [
            e.id_blind_index or ""
            for n, e in enumerate(self.events)
            if int((n + 1) * records) > int(n * records)
        ]

    async def publish(self) -> None:
        js = self.ctx.bus.js
        for start in range(0, self.size, 500):
            acks = []
            for data in self.events[start : start + 500]:
                env = Envelope.wrap(data, subject=data.child_id, sequence=1, trace_id=None)
                subject = f"{self.ctx.bus.namespace}.{data.relative_subject()}"
                acks.append(
                    js.publish(subject, env.model_dump_json().encode(), headers={"Nats-Msg-Id": env.id})
                )
            await asyncio.gather(*acks)

    async def reset(self) -> None:
        from enrollment.children.models import ChildView
        from enrollment.students.models import StudentRecord

        tables = self.ctx.spec.tables.events
        async with self.ctx.db.transaction() as s:
            for table in (tables.inbox, tables.outbox, tables.dead_letter):
                await s.execute(delete(table))
            await s.execute(delete(ChildView.__table__))  # type: ignore[attr-defined]
            await s.execute(delete(StudentRecord.__table__))  # type: ignore[attr-defined]
            if self.linked_blinds:
                await s.execute(insert(StudentRecord.__table__), _record_rows(self.linked_blinds))  # type: ignore[attr-defined]
        durable = f"{self.ctx.spec.name}__from__registry"
        with contextlib.suppress(Exception):  # not there yet
            await self.ctx.bus.js.delete_consumer(stream_name(self.ctx.bus.namespace, "registry"), durable)

    async def run(self, handler: str) -> float:
        await self.reset()
        [sub] = self.ctx.spec.subscriptions(self.ctx)
        if handler == "per-event":
            sub = Subscription(sub.source_service, sub.handlers)
        runner = ConsumerRunner(
            self.ctx.spec.name, self.ctx.db, self.ctx.spec.tables.events, self.ctx.bus, [sub]
        )
        started = time.perf_counter()
        task = asyncio.create_task(runner.run())
        try:
            while runner.applied + runner.dead_lettered < self.size:
                if task.done():
                    task.result()
                    raise RuntimeError("the consumer stopped")
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - started
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.check(runner)
        rate = self.size / elapsed
        print(f"  {handler}: {self.size} events in {elapsed:.2f} s = {rate:,.1f} events/s", flush=True)
        return rate

    async def check(self, runner: ConsumerRunner) -> None:
        from enrollment.children.models import ChildView
        from enrollment.students.models import StudentRecord

        c = ChildView.__table__  # type: ignore[attr-defined]
        r = StudentRecord.__table__  # type: ignore[attr-defined]
        outbox = self.ctx.spec.tables.events.outbox
        async with self.ctx.db.transaction() as s:
            children = (await s.execute(select(func.count()).select_from(c))).scalar_one()
            linked = (
                await s.execute(select(func.count()).select_from(r).where(r.c.child_id.is_not(None)))
            ).scalar_one()
            events = (
                await s.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.event_type.contains("linked"))
                )
            ).scalar_one()
        expected = len(self.linked_blinds)
        if runner.dead_lettered or children != self.size or linked != expected or events != expected:
            raise AssertionError(
                f"dead letters {runner.dead_lettered}, children {children}/{self.size}, "
                f"linked {linked}/{expected}, StudentLinked {events}/{expected}"
            )


async def measure(backend: str, size: int, repeats: int, records: float, nats: str) -> Record:
    spec = load_service("enrollment")
    with scratch_database(backend, "handlers") as url, tempfile.TemporaryDirectory() as var:
        upgrade(spec.migrations_dir, url)
        settings = spec.settings_cls(
            database_url=url,
            nats_url=nats,
            event_namespace=f"bh{secrets.token_hex(3)}",
            var_dir=var,
            relay_enabled=False,
        )
        ctx = build_context(spec, settings)
        await ctx.bus.connect()
        await ctx.bus.ensure_streams(("registry",))
        try:
            bench = Bench(ctx, size, records)
            await bench.publish()
            load = os.getloadavg()[0]
            print(f"{backend} {size} events, {len(bench.linked_blinds)} records to link, load {load:.1f}")
            with PeakMemory() as peak:
                sets, per_event = await paired_medians_async(
                    lambda: bench.run("set-based"), lambda: bench.run("per-event"), repeats
                )
            load_after = os.getloadavg()[0]
        finally:
            await ctx.bus.delete_streams(("registry",))
            await ctx.bus.close()
            await ctx.db.dispose()
    print(
        f"{backend}: set-based {sets.median:,.1f} vs per-event {per_event.median:,.1f} events/s "
        f"(×{sets.median / per_event.median:.2f}), load {load:.1f} → {load_after:.1f}",
        flush=True,
    )
    return Record(
        benchmark="B5 enrollment child handlers",
        size=size,
        baoxue=round(sets.median, 1),
        comparator=round(per_event.median, 1),
        unit="events/s",
        ratio=ratio(sets.median, per_event.median),
        goal="set-based ≥ per-event",
        met=sets.median >= per_event.median,
        peak_memory_mb=peak.mb,
        median_of=repeats,
        extra={
            "backend": backend,
            "set_based_samples": [round(x, 1) for x in sets.samples],
            "per_event_samples": [round(x, 1) for x in per_event.samples],
            "records_linked": len(bench.linked_blinds),
            "load_before_after": [round(load, 2), round(load_after, 2)],
        },
    )


async def main_async() -> None:
    parser = argument_parser(__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument(
        "--records", type=float, default=0.5, help="share of the children with an unlinked student record"
    )
    args = parser.parse_args()
    out: list[Record] = []
    with nats_server() as nats:
        for backend in args.backends.split(","):
            for size in args.sizes:
                out.append(await measure(backend, size, args.repeats, args.records, nats))
                write_records(args.out, out)


if __name__ == "__main__":
    asyncio.run(main_async())
