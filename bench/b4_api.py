"""B4 API: case read and visit create through a real uvicorn server vs a bare endpoint in the same server.

Setup per backend and size: a scratch database (PostgreSQL at ``BENCH_DATABASE_URL``, or SQLite) migrated
to casework's head and seeded with N cases of one school (one multi-row insert per 5,000); a NATS server
(``BENCH_NATS_URL`` or one of the script's own); the casework app under ``uvicorn --factory`` (one
process, uvloop + httptools, access log off) on a free port of 127.0.0.1, with a development signing key
of the run's own.

Measured over keep-alive HTTP/1.1 connections by a small raw asyncio client (httpx's own overhead would
dominate):

- throughput (closed loop, ``--concurrency`` connections, ``--requests`` requests per run):
  ``GET /v1/cases/{id}`` (jurisdiction filter, audit entry, masking) and ``POST /v1/visits`` (a new client
  id and ``Idempotency-Key`` each: idempotency lookup + store, evidence checks, outbox event) against
  ``GET /health`` of the same server, alternating, ``--repeats`` times; medians reported.
- latency at a fixed rate (open loop, ``--rate`` requests/s for ``--seconds``): each request's latency is
  measured from its *scheduled* send time, so queueing behind a slow request counts (no coordinated
  omission); p99 by nearest rank.

Goal (issue 5): requests/s ≥ 0.3 × the bare endpoint's, and p99 < 50 ms at 1,000 requests/s. Run:
``python bench/b4_api.py --sizes 10000,100000 --repeats 3 --out bench/results/b4.json``
(``--backends postgresql,sqlite``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

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
from sqlalchemy import create_engine, insert

from baoxue.auth.tokens import ensure_dev_keypair, mint_token
from baoxue.db import sync_url, utcnow
from baoxue.migrations import upgrade
from casework.cases.models import Case
from casework.main import SERVICE

GOAL = 0.3
P99_GOAL_MS = 50.0
SCHOOL = "37040600101001"
ISSUER, AUDIENCE = "https://idp.bench.baoxue.local", "baoxue"

Request = Callable[[], bytes]


# --- a minimal keep-alive HTTP/1.1 client ----------------------------------------------------------


class Connection:
    """One keep-alive connection: send a prepared request, read one response (Content-Length bodies)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def call(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def closed_loop(port: int, make: Request, *, requests: int, concurrency: int, expect: int) -> float:
    """Requests per second of ``concurrency`` connections issuing ``requests`` requests back to back."""
    connections = [await Connection.open(port) for _ in range(concurrency)]
    left = requests
    failures = 0

    async def worker(conn: Connection) -> None:
        nonlocal left, failures
        while left > 0:
            left -= 1
            if await conn.call(make()) != expect:
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - start
    for c in connections:
        c.close()
    if failures:
        raise RuntimeError(f"{failures} requests did not answer {expect}")
    return requests / elapsed


async def open_loop(
    port: int, make: Request, *, rate: float, seconds: float, expect: int, pool: int = 128
) -> tuple[float, int]:
    """p99 latency (ms) at a fixed arrival rate, from each request's scheduled send time, and how many
    requests failed (another status, or the connection dropped: it is reopened). A server that cannot
    keep up shows as a growing p99 and failures, never as a crash of the benchmark."""
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(pool):
        free.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    failures = 0

    async def one(scheduled: float) -> None:
        nonlocal failures
        conn = await free.get()
        try:
            if await conn.call(make()) != expect:
                failures += 1
        except (OSError, asyncio.IncompleteReadError):
            failures += 1
            conn.close()
            conn = await Connection.open(port)
        finally:
            free.put_nowait(conn)
        latencies.append((time.perf_counter() - scheduled) * 1000)

    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    while not free.empty():
        free.get_nowait().close()
    return percentile(latencies, 99), failures


# --- the server ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_cases(url: str, n: int) -> list[str]:
    """N suspected cases of one school, inserted set-based; returns their ids."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    engine = create_engine(sync_url(url))
    now, today = utcnow(), dt.date(2026, 11, 2)
    try:
        with engine.begin() as conn:
            for start in range(0, n, 5000):
                rows = [
                    {
                        "id": cid,
                        "child_key": f"c:bench-{i}",
                        "open_key": f"c:bench-{i}",
                        "child_id": f"bench-{i}",
                        "student_id": f"stu-{i}",
                        "school_code": SCHOOL,
                        "hukou_town": SCHOOL[:9],
                        "state": "suspected",
                        "planned_measures": [],
                        "opened_signal": "absence_four_weeks",
                        "opened_on": today,
                        "signal_count": 1,
                        "overdue_published": False,
                        "reopen_count": 0,
                        "version": 1,
                        "field_versions": {},
                        "created_by": "bench",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, cid in enumerate(ids[start : start + 5000], start=start)
                ]
                conn.execute(insert(Case), rows)
    finally:
        engine.dispose()
    return ids


def start_server(url: str, nats_url: str, key_file: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CASEWORK_DATABASE_URL": url,
        "CASEWORK_NATS_URL": nats_url,
        "CASEWORK_EVENT_NAMESPACE": f"b4{uuid.uuid4().hex[:8]}",
        "CASEWORK_JWT_ISSUER": ISSUER,
        "CASEWORK_JWT_AUDIENCE": AUDIENCE,
        "CASEWORK_JWT_PUBLIC_KEY_FILE": str(key_file),
        "CASEWORK_LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "casework.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError("uvicorn exited during start-up") from None
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("uvicorn did not start")


# --- the benchmark ------------------------------------------------------------------------------------


async def measure(backend: str, size: int, args: object, key_file: Path, nats_url: str) -> list[Record]:
    repeats, requests, concurrency = args.repeats, args.requests, args.concurrency  # type: ignore[attr-defined]
    rate, seconds = args.rate, args.seconds  # type: ignore[attr-defined]
    token = mint_token(
        key_file,
        subject="bench-school",
        roles=["school"],
        org=SCHOOL,
        issuer=ISSUER,
        audience=AUDIENCE,
        ttl=dt.timedelta(hours=4),
    )
    auth = {"Authorization": f"Bearer {token}"}
    health = http_request("GET", "/health", {})
    records: list[Record] = []
    with scratch_database(backend, "b4") as url:
        upgrade(SERVICE.migrations_dir, url)
        case_ids = seed_cases(url, size)
        rng = random.Random(size)

        def case_read() -> bytes:
            return http_request("GET", f"/v1/cases/{rng.choice(case_ids)}", auth)

        def visit_create() -> bytes:
            visit_id = str(uuid.uuid4())
            body = json.dumps(
                {
                    "id": visit_id,
                    "student_id": f"stu-{rng.randrange(size)}",
                    "visited_on": "2026-11-20",
                    "form": "home_visit",
                    "semester": "2026-autumn",
                    "participants": ["班主任"],
                    "photo_hashes": [uuid.uuid4().hex * 2],
                },
                ensure_ascii=False,
            ).encode()
            return http_request("POST", "/v1/visits", {**auth, "Idempotency-Key": f"v-{visit_id}"}, body)

        port = free_port()
        peak = PeakMemory()
        with peak:
            server = start_server(url, nats_url, key_file, port)
            try:
                await closed_loop(port, case_read, requests=200, concurrency=8, expect=200)  # warm up
                await closed_loop(port, visit_create, requests=200, concurrency=8, expect=201)
                bare_p99, _ = await open_loop(port, lambda: health, rate=rate, seconds=seconds, expect=200)
                for name, make, expect in (
                    ("case_read", case_read, 200),
                    ("visit_create", visit_create, 201),
                ):
                    ours, bare = await paired_medians_async(
                        lambda make=make, expect=expect: closed_loop(
                            port, make, requests=requests, concurrency=concurrency, expect=expect
                        ),
                        lambda: closed_loop(
                            port, lambda: health, requests=requests, concurrency=concurrency, expect=200
                        ),
                        repeats,
                    )
                    p99, failed = await open_loop(port, make, rate=rate, seconds=seconds, expect=expect)
                    r = ratio(ours.median, bare.median)
                    records.append(
                        Record(
                            benchmark=f"b4_{name}",
                            size=size,
                            baoxue=round(ours.median, 1),
                            comparator=round(bare.median, 1),
                            unit="requests/s",
                            ratio=r,
                            goal=f"≥ {GOAL} × bare; p99 < {P99_GOAL_MS:.0f} ms at {rate:.0f}/s",
                            met=bool(r is not None and r >= GOAL and p99 < P99_GOAL_MS and not failed),
                            peak_memory_mb=None,
                            median_of=repeats,
                            extra={
                                "p99_ms": round(p99, 2),
                                "failed_at_rate": failed,
                                "bare_p99_ms": round(bare_p99, 2),
                                "backend": backend,
                                "rate_per_s": rate,
                                "concurrency": concurrency,
                                "requests": requests,
                                "samples": [round(s, 1) for s in ours.samples],
                                "bare_samples": [round(s, 1) for s in bare.samples],
                            },
                        )
                    )
                    print(
                        f"{backend} {size} {name}: {ours.median:.0f}/s vs bare {bare.median:.0f}/s "
                        f"(ratio {r}), p99 {p99:.1f} ms at {rate:.0f}/s, {failed} failed (bare p99 {bare_p99:.1f} ms)",
                        flush=True,
                    )
            finally:
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
        for rec in records[-2:]:
            rec.peak_memory_mb = peak.mb
    return records


async def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--backends", default=os.environ.get("BENCH_B4_BACKENDS", "postgresql"))
    parser.add_argument("--requests", type=int, default=3000, help="requests per throughput run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s of the latency run")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the latency run")
    args = parser.parse_args()
    records: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="baoxue-b4-") as folder, nats_server() as nats_url:
        key_file = ensure_dev_keypair(Path(folder) / "jwt-key.pem")
        for backend in args.backends.split(","):
            for size in args.sizes:
                records += await measure(backend.strip(), size, args, key_file, nats_url)
                write_records(args.out, records)
    write_records(args.out, records)


if __name__ == "__main__":
    asyncio.run(main())
