"""B5 events: Baoxue's event path against raw JetStream publishing, in the same run on the same payloads.

Baoxue's path (the library, exactly as a service runs it): a publisher writes ``ChildRegistered`` events
into its outbox inside transactions (:class:`~baoxue.events.outbox.Outbox`), the
:class:`~baoxue.events.relay.OutboxRelay` publishes them to JetStream with ``Nats-Msg-Id`` and marks them
published, and a consumer's :class:`~baoxue.events.consumer.ConsumerRunner` applies each fetched batch in
a transaction with its inbox rows and an effect per event (a row in ``child_effects``, no unique key, so a
double application would show). Publisher and consumer have databases of their own, as two services do.

Comparator: the same envelope bytes sent with ``js.publish_async`` (with ``Nats-Msg-Id``) and a raw
durable pull consumer acking them: the most the same NATS server and client library move per second.

Figures per size (number of events), per backend (PostgreSQL primary, SQLite noted):

- throughput: events/s from the first write until the last effect (resp. last ack); goal ratio ≥ 0.2,
  and 0 lost (events written but never applied);
- latency: p99 from an event's commit to its effect's commit while events are written one per
  transaction at a paced 1,000 events/s (at most ``--paced-events`` of them); goal < 100 ms. The raw
  path's p99 (publish → consumer receipt) at the same pace is reported beside it, and the p99 of each
  stage (``stage_p99_ms``: relay = commit → PubAck, delivery = PubAck → fetched, consumer = fetched →
  effect committed).

The consumer runs in a process of its own (``bench/b5/consumer_process.py``; ``--consumer-process same``
puts it back on the publisher's event loop): two services are two processes. Its handler is set-based
(``Subscription.batch_handlers``: one multi-row ``INSERT`` of effect rows per batch) unless ``--handler
per-event`` (one ``INSERT`` per event, the per-event handler the library falls back to). The comparator is
unchanged: raw publisher and raw consumer in this one process.

The parts live in ``bench/b5/`` (data, path, raw, measure, consumer_process).

Run: ``python bench/b5_events.py --sizes 10000,100000 --repeats 3 --out bench/results/b5.json``.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable
from typing import Any

from b5.data import define_side, make_events
from b5.measure import Setup, measure_latency, measure_throughput
from harness import Record, argument_parser, nats_server, scratch_database, write_records


async def bench_backend(
    backend: str,
    sizes: list[int],
    repeats: int,
    nats_url: str,
    *,
    txn_size: int,
    paced_events: int,
    keep: Callable[[Record], None],
    separate: bool = True,
    handler: str = "set",
) -> None:
    with scratch_database(backend, "b5pub") as pub_url, scratch_database(backend, "b5sub") as sub_url:
        publisher, consumer = define_side(pub_url), define_side(sub_url)
        try:
            for size in sizes:
                events = make_events(size, seed=f"b5:{size}")
                setup = Setup(publisher, consumer, nats_url, backend, repeats, txn_size, separate, handler)
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
                    f"(raw {record.comparator} ms, stages {record.extra['stage_p99_ms']}), "
                    f"lost {record.extra['lost']}",
                    flush=True,
                )
        finally:
            await publisher.db.dispose()
            await consumer.db.dispose()


async def main_async(args: Any) -> list[Record]:
    """Every backend × size; the output file is rewritten after each record, so a run
    stopped by run.py's timeout still leaves what it measured."""
    records: list[Record] = []

    def keep(record: Record) -> None:
        records.append(record)
        write_records(args.out, records)

    # As a service freezes its start-up objects (baoxue.app), so do this process's writers and relay —
    # and the raw comparator beside them, in the same process.
    gc.collect()
    gc.freeze()
    with nats_server() as nats_url:
        for backend in args.backends.split(","):
            await bench_backend(
                backend.strip(),
                args.sizes,
                args.repeats,
                nats_url,
                txn_size=args.transaction_size,
                paced_events=args.paced_events,
                keep=keep,
                separate=args.consumer_process == "separate",
                handler=args.handler,
            )
    return records


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0] if __doc__ else "B5 events")
    parser.add_argument(
        "--backends",
        default=os.environ.get("BENCH_B5_BACKENDS", "postgresql,sqlite"),
        help="postgresql and/or sqlite (default: $BENCH_B5_BACKENDS or both)",
    )
    parser.add_argument("--transaction-size", type=int, default=100, help="events per outbox transaction")
    parser.add_argument(
        "--paced-events",
        type=int,
        default=int(os.environ.get("BENCH_B5_PACED_EVENTS", "5000")),
        help="events in the paced latency run, at most (default: $BENCH_B5_PACED_EVENTS or 5000)",
    )
    parser.add_argument(
        "--consumer-process",
        choices=("separate", "same"),
        default=os.environ.get("BENCH_B5_CONSUMER_PROCESS", "separate"),
        help="the consumer in a process of its own, as the consuming service is (default), or on the "
        "publisher's event loop (the setting before; $BENCH_B5_CONSUMER_PROCESS)",
    )
    parser.add_argument(
        "--handler",
        choices=("set", "per-event"),
        default=os.environ.get("BENCH_B5_HANDLER", "set"),
        help="the consumer's handler: set-based (one INSERT per batch, default) or one INSERT per event "
        "($BENCH_B5_HANDLER)",
    )
    args = parser.parse_args()
    records = asyncio.run(main_async(args))
    write_records(args.out, records)  # also when there was nothing to measure: an empty list


if __name__ == "__main__":
    main()
