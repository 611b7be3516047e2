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
import gc
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
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


@dataclass
class Run:
    """One measured run: requests/s, and the CPU seconds the client (this process) and the server used
    per request, which a shared machine's load disturbs far less than wall-clock rates."""

    per_second: float
    client_cpu_share: float  # client CPU seconds ÷ wall seconds: near 1.0 means the client saturates
    server_cpu_ms: float  # server process CPU milliseconds per request


def _server_cpu(server: psutil.Process | None) -> float:
    if server is None:
        return 0.0
    t = server.cpu_times()
    return float(t.user + t.system)


async def closed_loop(
    port: int,
    make: Request,
    *,
    requests: int,
    concurrency: int,
    expect: int,
    server: psutil.Process | None = None,
) -> Run:
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

    cpu0, server0, start = time.process_time(), _server_cpu(server), time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - start
    cpu, server_cpu = time.process_time() - cpu0, _server_cpu(server) - server0
    for c in connections:
        c.close()
    if failures:
        raise RuntimeError(f"{failures} requests did not answer {expect}")
    return Run(requests / elapsed, cpu / elapsed, server_cpu * 1000 / requests)


@dataclass
class Paced:
    """An open-loop run at a fixed arrival rate."""

    rate: float  # the arrival rate asked for
    achieved: float  # requests actually written to a connection per second during the schedule
    completed_per_second: float  # answers per second, from the first send to the last answer
    p50_ms: float
    p99_ms: float
    failed: int  # another status, a dropped connection
    unfinished: int  # still unanswered at the deadline (their latency so far enters the percentiles)
    client_cpu_share: float

    @property
    def p99_is_lower_bound(self) -> bool:
        return self.unfinished > 0


async def open_loop(
    port: int,
    make: Request,
    *,
    rate: float,
    seconds: float,
    expect: int,
    pool: int = 128,
    grace: float = 10.0,
) -> Paced:
    """Latency at a fixed arrival rate, measured from each request's *scheduled* send time, so time a
    request waits for a connection or behind a slow one counts (no coordinated omission). The schedule
    is sent whatever the answers do (open loop); ``grace`` seconds after its end the run stops, and a
    request still unanswered counts with the time it has waited so far, so a server that cannot keep
    up shows as a large p99 and ``unfinished``, never as a benchmark that runs for minutes."""
    free: asyncio.Queue[Connection] = asyncio.Queue()
    opened: list[Connection] = []
    for _ in range(pool):
        opened.append(await Connection.open(port))
        free.put_nowait(opened[-1])
    latencies: list[float] = []
    sent: list[float] = []
    failures = 0

    async def one(scheduled: float) -> None:
        nonlocal failures
        conn = await free.get()
        sent.append(time.perf_counter())
        try:
            if await conn.call(make()) != expect:
                failures += 1
        except (OSError, asyncio.IncompleteReadError):
            failures += 1
            conn.close()
            conn = await Connection.open(port)
            opened.append(conn)
        finally:
            free.put_nowait(conn)
        latencies.append((time.perf_counter() - scheduled) * 1000)

    total = int(rate * seconds)
    # The load generator's own pauses must not count as the server's latency: a cyclic collection of
    # this process's heap (grown by the throughput runs before) held its event loop up to 192 ms in the
    # middle of a schedule, and the requests due meanwhile were sent that late (27 Nov; each was
    # answered in under 20 ms once sent). Collected now, not during the schedule.
    gc.collect()
    gc.disable()
    try:
        cpu0 = time.process_time()
        start = time.perf_counter() + 0.05
        tasks: dict[asyncio.Task[None], float] = {}
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks[asyncio.create_task(one(scheduled))] = scheduled
        schedule_end = start + total / rate
        sent_in_schedule = sum(1 for t in sent if t <= schedule_end)
        timeout = max(0.0, schedule_end + grace - time.perf_counter())
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        end = time.perf_counter()
        cpu = time.process_time() - cpu0
    finally:
        gc.enable()  # also when the run fails: the rest of the benchmark collects as usual
    completed = len(latencies)
    # Unanswered requests enter the percentiles with the time they had waited at the deadline (a floor).
    waited = latencies[:completed] + [(end - tasks[t]) * 1000 for t in pending]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for conn in opened:
        conn.close()
    return Paced(
        rate=rate,
        achieved=sent_in_schedule / (total / rate),
        completed_per_second=completed / (end - start),
        p50_ms=percentile(waited, 50),
        p99_ms=percentile(waited, 99),
        failed=failures,
        unfinished=len(pending),
        client_cpu_share=cpu / (end - start),
    )


# --- the server ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def visit_body(rng: random.Random, size: int) -> tuple[str, bytes]:
    """A new visit to a random seeded student (the visit create scenario): its id and JSON body."""
    visit_id = str(uuid.uuid4())
    body = {
        "id": visit_id,
        "student_id": f"stu-{rng.randrange(size)}",
        "visited_on": "2026-11-20",
        "form": "home_visit",
        "semester": "2026-autumn",
        "participants": ["班主任"],
        "photo_hashes": [uuid.uuid4().hex * 2],
    }
    return visit_id, json.dumps(body, ensure_ascii=False).encode()


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


def settle_after_seeding(url: str) -> None:
    """PostgreSQL: a checkpoint after the bulk seed, so that the measured minutes do not share the disk
    with the checkpoint the seed's WAL triggers (1M cases write ≈ 1 GB of WAL: a 64-second checkpoint ran
    through the whole 1M measurement on 27 Nov, read p99 119 ms), and the measured writes do not pay the
    full-page images that the first change of every page after a checkpoint's start costs."""
    if not url.startswith("postgresql"):
        return
    engine = create_engine(sync_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
    finally:
        engine.dispose()


def start_server(
    url: str,
    nats_url: str,
    key_file: Path,
    port: int,
    *,
    profile: Path | None = None,
    server_path: str | None = None,
) -> subprocess.Popen[bytes]:
    """uvicorn with the casework app; under cProfile (written to ``profile`` when the server stops on
    SIGTERM) if asked; ``server_path`` is put first on the server's PYTHONPATH (to measure another
    checkout's ``casework`` package, e.g. the previous commit, against the same library)."""
    pythonpath = [server_path] if server_path else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*pythonpath, *filter(None, [os.environ.get("PYTHONPATH")])]),
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
        *(["-m", "cProfile", "-o", str(profile)] if profile else []),
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
    deadline = time.monotonic() + 180
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


def _sample(run: Run) -> dict[str, float]:
    return {
        "per_second": round(run.per_second, 1),
        "client_cpu_share": round(run.client_cpu_share, 2),
        "server_cpu_ms": round(run.server_cpu_ms, 3),
    }


async def measure(backend: str, size: int, args: object, key_file: Path, nats_url: str) -> list[Record]:
    repeats, requests, concurrency = args.repeats, args.requests, args.concurrency  # type: ignore[attr-defined]
    rate, seconds = args.rate, args.seconds  # type: ignore[attr-defined]
    only = set(args.only.split(","))  # type: ignore[attr-defined]
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
        settle_after_seeding(url)
        rng = random.Random(size)

        def case_read() -> bytes:
            return http_request("GET", f"/v1/cases/{rng.choice(case_ids)}", auth)

        def visit_create() -> bytes:
            visit_id, body = visit_body(rng, size)
            return http_request("POST", "/v1/visits", {**auth, "Idempotency-Key": f"v-{visit_id}"}, body)

        port = free_port()
        peak = PeakMemory()
        profile = (
            Path(args.profile) / f"b4-{backend}-{size}-{'+'.join(sorted(only))}.prof"
            if args.profile
            else None
        )  # type: ignore[attr-defined]
        with peak:
            server = start_server(
                url,
                nats_url,
                key_file,
                port,
                profile=profile,
                server_path=args.server_path,  # type: ignore[attr-defined]
            )
            proc = psutil.Process(server.pid)
            try:
                await closed_loop(port, case_read, requests=200, concurrency=8, expect=200)  # warm up
                await closed_loop(port, visit_create, requests=200, concurrency=8, expect=201)
                for clients in args.sweep:  # type: ignore[attr-defined]
                    run = await closed_loop(
                        port, case_read, requests=requests, concurrency=clients, expect=200, server=proc
                    )
                    print(
                        f"{backend} {size} sweep: {clients} clients, {run.per_second:.0f} reads/s, "
                        f"server CPU {run.server_cpu_ms:.3f} ms/read",
                        flush=True,
                    )
                bare_paced = await open_loop(port, lambda: health, rate=rate, seconds=seconds, expect=200)
                print(f"{backend} {size} bare /health at {rate:.0f}/s: {bare_paced}", flush=True)
                for name, make, expect in (
                    ("case_read", case_read, 200),
                    ("visit_create", visit_create, 201),
                ):
                    if name not in only:
                        continue
                    ours_runs: list[Run] = []
                    bare_runs: list[Run] = []

                    async def ours_once(
                        make: Request = make, expect: int = expect, ours_runs: list[Run] = ours_runs
                    ) -> float:
                        ours_runs.append(
                            await closed_loop(
                                port,
                                make,
                                requests=requests,
                                concurrency=concurrency,
                                expect=expect,
                                server=proc,
                            )
                        )
                        return ours_runs[-1].per_second

                    async def bare_once(bare_runs: list[Run] = bare_runs) -> float:
                        bare_runs.append(
                            await closed_loop(
                                port,
                                lambda: health,
                                requests=requests,
                                concurrency=concurrency,
                                expect=200,
                                server=proc,
                            )
                        )
                        return bare_runs[-1].per_second

                    ours, bare = await paired_medians_async(ours_once, bare_once, repeats)
                    paced = await open_loop(port, make, rate=rate, seconds=seconds, expect=expect)
                    r = ratio(ours.median, bare.median)
                    p99_met = (
                        paced.p99_ms < P99_GOAL_MS
                        and not paced.failed
                        and not paced.unfinished
                        and paced.achieved >= 0.95 * rate
                    )
                    server_ms = statistics.median(run.server_cpu_ms for run in ours_runs)
                    bare_server_ms = statistics.median(run.server_cpu_ms for run in bare_runs)
                    records.append(
                        Record(
                            benchmark=f"b4_{name}",
                            size=size,
                            baoxue=round(ours.median, 1),
                            comparator=round(bare.median, 1),
                            unit="requests/s",
                            ratio=r,
                            goal=f"≥ {GOAL} × bare; p99 < {P99_GOAL_MS:.0f} ms at ≥ 95 % of {rate:.0f}/s",
                            met=bool(r is not None and r >= GOAL and p99_met),
                            peak_memory_mb=None,
                            median_of=repeats,
                            extra={
                                "label": args.label,  # type: ignore[attr-defined]
                                "backend": backend,
                                "p50_ms": round(paced.p50_ms, 2),
                                "p99_ms": round(paced.p99_ms, 2),
                                "p99_is_lower_bound": paced.p99_is_lower_bound,
                                "rate_per_s": rate,
                                "achieved_per_s": round(paced.achieved, 1),
                                "completed_per_s": round(paced.completed_per_second, 1),
                                "failed_at_rate": paced.failed,
                                "unfinished_at_rate": paced.unfinished,
                                "client_cpu_share_at_rate": round(paced.client_cpu_share, 2),
                                "bare_p99_ms": round(bare_paced.p99_ms, 2),
                                "bare_achieved_per_s": round(bare_paced.achieved, 1),
                                "bare_unfinished_at_rate": bare_paced.unfinished,
                                "server_cpu_ms_per_request": round(server_ms, 3),
                                "bare_server_cpu_ms_per_request": round(bare_server_ms, 3),
                                "concurrency": concurrency,
                                "requests": requests,
                                "samples": [_sample(run) for run in ours_runs],
                                "bare_samples": [_sample(run) for run in bare_runs],
                                "load_average": list(os.getloadavg()),
                            },
                        )
                    )
                    print(
                        f"{backend} {size} {name}: {ours.median:.0f}/s vs bare {bare.median:.0f}/s (ratio {r}); "
                        f"server CPU {server_ms:.2f} ms/request vs bare {bare_server_ms:.2f}; "
                        f"client CPU share {statistics.median(x.client_cpu_share for x in ours_runs):.2f} "
                        f"(bare {statistics.median(x.client_cpu_share for x in bare_runs):.2f}); "
                        f"at {rate:.0f}/s asked: {paced.achieved:.0f}/s sent, {paced.completed_per_second:.0f}/s "
                        f"answered, p50 {paced.p50_ms:.1f} ms, p99 {'≥ ' if paced.p99_is_lower_bound else ''}"
                        f"{paced.p99_ms:.1f} ms, {paced.failed} failed, {paced.unfinished} unfinished; "
                        f"load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
            finally:
                server.terminate()
                try:
                    server.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    server.kill()
        for rec in records:
            rec.peak_memory_mb = peak.mb
    return records


async def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--backends", default=os.environ.get("BENCH_B4_BACKENDS", "postgresql"))
    parser.add_argument("--requests", type=int, default=3000, help="requests per throughput run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s of the latency run")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the latency run")
    parser.add_argument("--only", default="case_read,visit_create", help="scenarios to run")
    parser.add_argument(
        "--profile", default=None, help="folder: run the server under cProfile, write .prof there"
    )
    parser.add_argument(
        "--server-path",
        default=None,
        help="put this folder first on the server's PYTHONPATH (before/after runs)",
    )
    parser.add_argument(
        "--sweep",
        type=lambda text: [int(x) for x in text.split(",") if x.strip()],
        default=[],
        help="before the measured runs, case-read throughput at each of these client counts (e.g. 1,8,16,64)",
    )
    parser.add_argument("--label", default=None, help="a label stored in every record (e.g. before, after)")
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
