"""Shared helpers of the benchmark suite: timing, peak memory, records, machine facts, scratch infrastructure.

Every ``bench/bN_*.py`` script takes ``--sizes 10000,100000 --repeats 3 --out bench/results/bN.json`` and
writes a JSON list of :class:`Record` (see :func:`parse_args` and :func:`write_records`). Scripts import
this module as ``harness`` (``python bench/bN_x.py`` puts ``bench/`` on ``sys.path``).

Environment (set by ``bench/run.py``, defaults for a script run on its own):

- ``BENCH_DATABASE_URL``: the PostgreSQL server; scripts create and drop their own ``bench_*`` databases.
- ``BENCH_NATS_URL``: a NATS server with JetStream; without it a script spawns its own
  (:func:`nats_server`), never the machine's 4222.
- ``BAOXUE_JWT_PUBLIC_KEY_FILE``: the token key the services' contexts need; without it a key of the
  benchmark's own is made in the system's temporary folder, so a fresh checkout benchmarks before ``make run``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from baoxue.auth.tokens import ensure_dev_keypair

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_SIZES = (10_000, 100_000)

os.environ.setdefault(
    "BAOXUE_JWT_PUBLIC_KEY_FILE",
    str(ensure_dev_keypair(Path(tempfile.gettempdir()) / "baoxue-bench" / "jwt-key.pem")),
)
RECORD_KEYS = (
    "benchmark",
    "size",
    "baoxue",
    "comparator",
    "unit",
    "ratio",
    "goal",
    "met",
    "peak_memory_mb",
    "median_of",
)


# --- timing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampled:
    """The median of repeated measurements, with every sample (in run order)."""

    median: float
    samples: list[float]


def median_of(fn: Callable[[], float], repeats: int) -> Sampled:
    """Run ``fn`` ``repeats`` times; each call returns its own figure (events/s, seconds, ms …)."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    samples = [float(fn()) for _ in range(repeats)]
    return Sampled(statistics.median(samples), samples)


async def median_of_async(fn: Callable[[], Awaitable[float]], repeats: int) -> Sampled:
    """:func:`median_of` for a coroutine function (the runs stay sequential: never overlapped)."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    samples = [float(await fn()) for _ in range(repeats)]
    return Sampled(statistics.median(samples), samples)


async def paired_medians_async(
    baoxue: Callable[[], Awaitable[float]], comparator: Callable[[], Awaitable[float]], repeats: int
) -> tuple[Sampled, Sampled]:
    """Run Baoxue's path and its comparator back to back, alternating, ``repeats`` times each, so drift
    of a shared, noisy machine affects both alike; returns the two :class:`Sampled`."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(repeats):
        ours.append(float(await baoxue()))
        theirs.append(float(await comparator()))
    return Sampled(statistics.median(ours), ours), Sampled(statistics.median(theirs), theirs)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by the nearest-rank method; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


# --- peak memory ------------------------------------------------------------------------------------


def _reset_high_water_mark() -> bool:
    """Reset the kernel's VmHWM of this process (Linux ≥ 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _high_water_mark_bytes() -> int | None:
    """This process's peak resident set since the last reset (VmHWM), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """The resident-set high-water mark of this process and its children while the block runs.

    RSS, not tracemalloc: C extensions (psycopg, DuckDB, orjson) allocate outside Python's allocator.
    On Linux the kernel's own VmHWM of this process is reset at the start and read at the end (exact),
    and a thread samples only the child processes, every ``interval`` seconds (a spawned ``nats-server``
    has no high-water mark this process can reset); the figure is this process's peak plus the
    children's sampled peak. Elsewhere the thread samples this process too.
    Entering the same instance again keeps the maximum over every block (one figure for all repeats).

    The sampler runs beside the work it measures, in the same process, so it must cost next to nothing:
    finding the children walks every process of the machine (``psutil`` reads ``/proc/*/stat``), so the
    list is refreshed once every ``rescan`` seconds, not at every sample. Walking it every 10 ms took
    15 s of CPU in a 70 s run of B1 at 100,000 rows (py-spy, 29 Nov), much of it holding the GIL that the
    feed's validating thread and the event loop share.

    >>> with PeakMemory() as peak:
    ...     work()
    >>> peak.mb
    """

    def __init__(self, *, interval: float = 0.01, rescan: float = 1.0, include_children: bool = True) -> None:
        self.interval = interval
        self.rescan = rescan
        self.include_children = include_children
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._exact = False
        self._process = psutil.Process()
        self._children: list[psutil.Process] = []
        self._scanned_at = -float("inf")
        self._sampled = 0

    def _children_rss(self, *, fresh: bool) -> int:
        """The children's RSS; the list of children found again if ``fresh`` or ``rescan`` seconds old."""
        now = time.monotonic()
        if fresh or now - self._scanned_at >= self.rescan:
            self._children = self._process.children(recursive=True)
            self._scanned_at = now
        total = 0
        for child in self._children:
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total

    def _rss_now(self, *, fresh: bool = False) -> int:
        """What the sampler adds up: the children's RSS, and this process's unless VmHWM gives it."""
        own = 0 if self._exact else self._process.memory_info().rss
        return own + (self._children_rss(fresh=fresh) if self.include_children else 0)

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self._sampled = max(self._sampled, self._rss_now())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._exact = _reset_high_water_mark()
        self._stop.clear()
        self._sampled = self._rss_now(fresh=True)
        if self.include_children or not self._exact:
            self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        sampled = max(self._sampled, self._rss_now(fresh=True))  # with a child started since the last scan
        own = 0
        if self._exact:  # the samples left this process out: its exact peak (its RSS now, failing that)
            hwm = _high_water_mark_bytes()
            own = hwm if hwm is not None else self._process.memory_info().rss
        self.peak_bytes = max(self.peak_bytes, sampled + own)

    @property
    def mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


# --- records ----------------------------------------------------------------------------------------


@dataclass
class Record:
    """One benchmark figure at one size: Baoxue's path against its comparator in the same run.

    ``ratio`` is whatever the goal is stated in (for throughput Baoxue / comparator); ``goal`` is the
    goal as text (``"≥ 0.2"``, ``"< 100 ms"``) and ``met`` whether this measurement meets it. ``extra``
    keys (``p99_ms``, ``lost``, ``backend`` …) are written beside the fixed ones.
    """

    benchmark: str
    size: int
    baoxue: float
    comparator: float | None
    unit: str
    ratio: float | None
    goal: str
    met: bool
    peak_memory_mb: float | None
    median_of: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        clash = set(extra) & set(data)
        if clash:
            raise ValueError(f"extra keys shadow record fields: {sorted(clash)}")
        return {**data, **extra}


def ratio(baoxue: float, comparator: float | None) -> float | None:
    """``baoxue / comparator`` rounded to 3 places (None when there is no comparator figure)."""
    if comparator is None or comparator == 0:
        return None
    return round(baoxue / comparator, 3)


def write_records(path: Path | str, records: list[Record]) -> Path:
    """Write ``records`` as a JSON list (the agreed output of every ``bN`` script)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.write_text(json.dumps([r.to_json() for r in records], ensure_ascii=False, indent=2) + "\n")
    tmp.replace(out)
    return out


def validate_record(data: Any) -> list[str]:
    """What is wrong with one record read back from a script's output (empty when it is well formed)."""
    if not isinstance(data, dict):
        return ["not an object"]
    problems = [f"missing {k}" for k in RECORD_KEYS if k not in data]
    if "size" in data and not isinstance(data["size"], int):
        problems.append("size is not an integer")
    if "met" in data and not isinstance(data["met"], bool):
        problems.append("met is not a boolean")
    return problems


# --- command line -----------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    """``"10k,100000,1M"`` → ``[10000, 100000, 1000000]``."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1], 1)
        number = part[:-1] if scale != 1 else part
        sizes.append(int(float(number) * scale))
    if not sizes or any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive numbers, e.g. 10000,100000")
    return sizes


def argument_parser(description: str) -> argparse.ArgumentParser:
    """The agreed options of every benchmark script; a script may add its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="e.g. 10000,100000")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size; the median is reported")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of records to write")
    return parser


# --- scratch infrastructure -------------------------------------------------------------------------


def database_server_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


@contextlib.contextmanager
def scratch_database(backend: str, label: str) -> Iterator[str]:
    """A database of its own for one benchmark: ``bench_<label>_<random>`` on the PostgreSQL server at
    ``BENCH_DATABASE_URL`` (dropped afterwards), or a SQLite file in a temporary folder."""
    suffix = secrets.token_hex(3)
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="baoxue-bench-") as folder:
            yield f"sqlite:///{Path(folder) / f'bench_{label}_{suffix}.db'}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend!r}")
    from baoxue.infra import create_postgres_database, drop_postgres_database

    server = database_server_url()
    name = f"bench_{label}_{suffix}"
    url = create_postgres_database(server, name)
    try:
        yield url
    finally:
        drop_postgres_database(server, name)


@contextlib.contextmanager
def nats_server() -> Iterator[str]:
    """``BENCH_NATS_URL`` when set, else a ``nats-server`` with JetStream of this process's own."""
    given = os.environ.get("BENCH_NATS_URL")
    if given:
        yield given
        return
    from baoxue.infra import NatsServerProcess

    with tempfile.TemporaryDirectory(prefix="baoxue-bench-nats-") as folder:
        server = NatsServerProcess(Path(folder) / "store")
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


# --- machine facts ----------------------------------------------------------------------------------


def postgres_version(server_url: str) -> str | None:
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(server_url).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except Exception:
        return None


def nats_server_version() -> str | None:
    try:
        from baoxue.infra import find_nats_server

        out = subprocess.run(
            [find_nats_server(), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        return out.stdout.strip().removeprefix("nats-server:").strip() or None
    except Exception:
        return None


def machine_facts(database_url: str | None = None) -> dict[str, Any]:
    """What the figures were measured on: cores, memory, OS, Python, PostgreSQL and NATS versions."""
    memory = psutil.virtual_memory()
    return {
        "cpu_logical": psutil.cpu_count(logical=True),
        "cpu_physical": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(),
        "memory_gb": round(memory.total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "postgresql": postgres_version(database_url or database_server_url()),
        "nats_server": nats_server_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None
