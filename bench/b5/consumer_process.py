"""B5's consumer in a process of its own, as the consuming service runs in reality.

The publisher's process (writers and relay) starts this script for one measurement and talks to it over
its standard streams:

- it prints ``ready`` once the durable pull consumer exists;
- then ``applied <n> <t>`` whenever the count of applied events changed (``t``: ``time.perf_counter()``
  of the latest effect commit, CLOCK_MONOTONIC on Linux, so comparable with the publisher's clock);
- a line ``stop`` on its standard input stops the runner; it prints one JSON line ``{"fetched_at": …,
  "effect_at": …, "applied": …, "duplicates": …, "peak_memory_mb": …}`` and exits.

Run: ``python bench/b5/consumer_process.py --database URL --nats URL --namespace NS --handler set``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for ``b5`` and ``harness``

from b5.data import define_side
from b5.path import start_runner
from baoxue.events.bus import EventBus


async def main_async(args: argparse.Namespace) -> None:
    side = define_side(args.database, create=False)
    bus = EventBus(args.nats, namespace=args.namespace, client_name="bench-consumer")
    await bus.connect()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        async with start_runner(side, bus, handler=args.handler) as runner:
            gc.collect()  # as every service does once it has started (baoxue.app: start-up objects frozen)
            gc.freeze()
            print("ready", flush=True)
            stop = asyncio.create_task(stdin.readline())
            last = -1
            while not stop.done():
                if runner.applied != last:
                    last = runner.applied
                    latest = max(runner.effect_at.values(), default=0.0)
                    print(f"applied {last} {latest!r}", flush=True)
                await asyncio.wait([stop], timeout=0.005)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
        print(
            json.dumps(
                {
                    "fetched_at": runner.fetched_at,
                    "effect_at": runner.effect_at,
                    "applied": runner.applied,
                    "duplicates": runner.duplicates,
                    "peak_memory_mb": round(peak, 1),
                    "cpu_seconds": round(time.process_time(), 3),
                }
            ),
            flush=True,
        )
    finally:
        await bus.close()
        await side.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--database", required=True)
    parser.add_argument("--nats", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--handler", choices=("set", "per-event"), default="set")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
