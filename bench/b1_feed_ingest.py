"""B1 feed ingest: Baoxue's whole feed path vs a raw bulk load of the same rows into a plain table.

Data: a generated district (``baoxue.synth``) sized so that the police feed of 2026-09 has at least N
rows; the first N rows are used (the department's real CSV layout, with its clerical noise).

- Baoxue: ``registry.feeds.service.submit_batch`` exactly as the API runs it — inspect the file, create
  the batch and its job, then the job: parse, validate (ID numbers, school age, addresses, pinyin),
  encrypt ID numbers and the original cells of rows with reason codes, stage the rows, merge them into
  child records (provenance, flags, conflicts, linkage) and write ChildRegistered + FeedCompleted into
  the outbox. Domain tables are emptied before each repeat, so every repeat registers N children.
- Comparator on PostgreSQL: ``COPY plain FROM STDIN (FORMAT csv, HEADER)`` of the same file into a table
  of eleven text columns. On SQLite: one transaction of ``executemany`` INSERTs of the parsed rows.

Goal (issue 3): Baoxue's rows/s ≥ 0.3 × the comparator's. Run:
``python bench/b1_feed_ingest.py --sizes 10000,100000 --repeats 3 --out bench/results/b1.json``
(``--backends postgresql,sqlite`` to choose backends).
"""

from __future__ import annotations

import asyncio
import cProfile
import csv
import itertools
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from harness import (
    PeakMemory,
    Record,
    argument_parser,
    paired_medians_async,
    ratio,
    scratch_database,
    write_records,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url

from baoxue.app import build_context
from baoxue.auth.principal import Principal
from baoxue.migrations import upgrade
from baoxue.pii.files import SealedFile
from baoxue.synth import SynthConfig, generate_district
from registry.feeds import service as feeds
from registry.feeds.parsing import read_rows
from registry.feeds.uploads import SavedUpload, spool_dir
from registry.feeds.validation import ID_AAD, RowValidator
from registry.main import SERVICE
from registry.settings import RegistrySettings

GOAL = 0.3
POLICE = Principal(
    subject="bench-police",
    roles=frozenset({"dept_police"}),
    org="370406D02",
    scope="370406",
    permissions=frozenset({"feed:submit"}),
)


def feed_file(n: int, folder: Path) -> Path:
    """The first ``n`` rows of a generated police feed (UTF-8 with BOM, as the generator writes it)."""
    generate_district(SynthConfig(children=int(n * 1.02) + 50, seed=11, previous_period=None), folder)
    source = folder / "feeds/2026-09/police.csv"
    target = folder / f"police-{n}.csv"
    with (
        source.open(encoding="utf-8-sig", newline="") as src,
        target.open("w", encoding="utf-8", newline="") as dst,
    ):
        reader, writer = csv.reader(src), csv.writer(dst)
        rows = list(itertools.islice(reader, n + 1))
        if len(rows) < n + 1:
            raise SystemExit(f"the generated feed has only {len(rows) - 1} rows")
        writer.writerows(rows)
    return target


def _sealed(path: Path, cipher: Any, target: Path) -> SealedFile:
    """``path``'s bytes as a sealed spool file at ``target`` (replaced if it exists)."""
    target.unlink(missing_ok=True)
    sealed = SealedFile(target, cipher)
    with path.open("rb") as plain, sealed.create() as writer:
        while chunk := plain.read(1 << 20):
            writer.write(chunk)
    return sealed


def python_floor(ctx: Any, settings: RegistrySettings, path: Path) -> dict[str, float]:
    """CPU µs per row of the Python work alone, no database: parsing the CSV, ``RowValidator.validate``
    (GB 11643 check, NFKC, pinyin, address match, SM4-GCM encryption and HMAC-SM3 blind index of the ID
    number and the guardian phone, the encrypted original cells of rows with reason codes), and the ID
    number's encryption + blind index alone.

    The ingest job cannot go faster than parse + validate per row on one core: this is the bound."""
    clock = time.thread_time  # CPU seconds of this thread: the bound, whatever else the machine runs
    started, wall = clock(), time.perf_counter()
    rows = list(read_rows(_sealed(path, ctx.cipher, path.with_suffix(".floor")), "csv", "utf-8"))
    parsed = clock()
    validator = RowValidator(
        "police", settings.cutoff_for("2026-09"), ctx.directory, ctx.cipher, ctx.blind_index, "floor"
    )
    for number, cells, malformed in rows:
        validator.validate(number, cells, malformed=malformed)
    validated, validated_wall = clock(), time.perf_counter()
    ids = [str(cells.get("id_number") or "").strip() or "x" for _, cells, _ in rows]
    for value in ids:
        ctx.cipher.encrypt(value, associated_data=ID_AAD)
        ctx.blind_index.of(value)
    crypto = clock()
    n = len(rows)
    return {
        "parse_cpu_us_per_row": round((parsed - started) / n * 1e6, 1),
        "validate_cpu_us_per_row": round((validated - parsed) / n * 1e6, 1),
        "id_crypto_cpu_us_per_row": round((crypto - validated) / n * 1e6, 1),
        "python_floor_rows_per_cpu_s": round(n / (validated - started), 1),
        "python_floor_rows_per_wall_s": round(n / (validated_wall - wall), 1),
    }


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def measure(
    backend: str, url: str, n: int, path: Path, repeats: int, spool: Path, profile: Path | None = None
) -> Record:
    upgrade(SERVICE.migrations_dir, url)
    spool.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (set-up, before any timing)
    settings = RegistrySettings(database_url=url, environment="test", var_dir=spool)
    # Where the API saves a submission before it is accepted (it creates the folder as it saves).
    spool_dir(settings).mkdir(mode=0o700, parents=True, exist_ok=True)
    ctx = build_context(SERVICE, settings)
    peak = PeakMemory()
    last: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []
    profiler = cProfile.Profile() if profile is not None else None

    async def baoxue() -> float:
        # Every repeat on a registry as new as the first one's. Emptying the tables with DELETE between
        # repeats left the previous repeat's dead rows and planner statistics behind: at 100k the merge
        # steps grew from the first repeat to the next (register 2.4 -> 3.9-4.6 s; the 1M link step
        # 29 -> 241 s) and stay flat with a fresh database (1M link step 51, 52, 51 s; 27-28 Nov).
        with scratch_database(backend, "b1run") as run_url:
            upgrade(SERVICE.migrations_dir, run_url)
            run_ctx = build_context(
                SERVICE, RegistrySettings(database_url=run_url, environment="test", var_dir=spool)
            )
            try:
                return await ingest(run_ctx)
            finally:
                await run_ctx.db.dispose()

    async def ingest(ctx: Any) -> float:
        # As the API saves a submission: sealed, in the spool folder (not timed, like the upload).
        copy = _sealed(path, ctx.cipher, spool_dir(settings) / f"submit-{time.monotonic_ns()}.csv").path
        plain_size = path.stat().st_size  # noqa: ASYNC240 (set-up, not timed)
        with peak:
            if profiler is not None:
                profiler.enable()
            cpu = time.process_time()
            start = time.perf_counter()
            upload = SavedUpload(copy, "csv", plain_size)
            batch, _ = await feeds.submit_batch(
                ctx=ctx,
                principal=POLICE,
                department="police",
                period="2026-09",
                mode="commit",
                client_batch_id=None,
                upload=upload,
            )
            await ctx.jobs.tasks[batch["job_id"]]
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
            if profiler is not None:
                profiler.disable()
        async with ctx.db.transaction() as s:
            row = (
                await s.execute(
                    text("SELECT status, accepted, rejected, children_registered FROM feed_batches")
                )
            ).one()
        if row.status != "completed":
            raise SystemExit(f"the batch ended {row.status}")
        last.update(accepted=row.accepted, rejected=row.rejected, registered=row.children_registered)
        async with ctx.db.transaction() as s:
            job = await ctx.jobs.get(s, batch["job_id"])
        counts = ((job or {}).get("result") or {}).get("counts", {})
        steps.append(
            {"total_seconds": round(elapsed, 3), "process_cpu_seconds": round(cpu, 3)}
            | {k: v for k, v in counts.items() if k.endswith("_seconds")}
            | counts.get("merge_seconds", {})
        )
        steps[-1].pop("merge_seconds", None)
        return n / elapsed

    async def raw_copy() -> float:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS plain_feed")
            conn.execute("CREATE TABLE plain_feed (" + ", ".join(f"c{i} text" for i in range(11)) + ")")
            start = time.perf_counter()
            with (
                conn.cursor() as cur,
                cur.copy("COPY plain_feed FROM STDIN (FORMAT csv, HEADER true)") as cp,
                path.open("rb") as fh,
            ):
                while chunk := fh.read(1 << 20):
                    cp.write(chunk)
            return n / (time.perf_counter() - start)

    async def executemany() -> float:
        file = make_url(url).database
        with sqlite3.connect(str(file)) as conn:
            conn.execute("DROP TABLE IF EXISTS plain_feed")
            conn.execute("CREATE TABLE plain_feed (" + ", ".join(f"c{i} text" for i in range(11)) + ")")
        start = time.perf_counter()
        with path.open(encoding="utf-8", newline="") as fh, sqlite3.connect(str(file)) as conn:
            reader = csv.reader(fh)
            next(reader)
            conn.executemany("INSERT INTO plain_feed VALUES (" + ",".join("?" * 11) + ")", reader)
        return n / (time.perf_counter() - start)

    comparator = raw_copy if backend == "postgresql" else executemany
    ours, theirs = await paired_medians_async(baoxue, comparator, repeats)
    floor = python_floor(ctx, settings, path)
    await ctx.db.dispose()
    if profiler is not None and profile is not None:
        profiler.dump_stats(str(profile.with_suffix(f".{backend}.{n}.prof")))
    r = ratio(ours.median, theirs.median)
    return Record(
        f"b1_feed_ingest_{backend}",
        n,
        round(ours.median, 1),
        round(theirs.median, 1),
        "rows/s",
        r,
        f"≥ {GOAL}",
        r is not None and r >= GOAL,
        peak.mb,
        repeats,
        {
            "backend": backend,
            "comparator_kind": "COPY" if backend == "postgresql" else "executemany",
            "baoxue_samples": [round(x, 1) for x in ours.samples],
            "comparator_samples": [round(x, 1) for x in theirs.samples],
            "step_seconds": steps,
            **floor,
            "python_floor_ratio": ratio(floor["python_floor_rows_per_cpu_s"], theirs.median),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            **last,
        },
    )


def main() -> None:
    parser = argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write cProfile stats of Baoxue's runs (PATH.<backend>.<n>.prof)",
    )
    args = parser.parse_args()
    records: list[Record] = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="baoxue-b1-") as folder:
            path = feed_file(n, Path(folder))
            for backend in args.backends.split(","):
                with scratch_database(backend, "b1") as url:
                    record = asyncio.run(
                        measure(backend, url, n, path, args.repeats, Path(folder) / "spool", args.profile)
                    )
                records.append(record)
                print(
                    f"{record.benchmark} n={n}: baoxue {record.baoxue} rows/s vs {record.comparator} rows/s "
                    f"ratio {record.ratio} met={record.met} peak {record.peak_memory_mb} MB"
                )
                print("  steps (s):", json.dumps(record.extra["step_seconds"]))
                print(
                    "  python floor:",
                    {k: record.extra[k] for k in record.extra if "per_row" in k or "floor" in k},
                )
    write_records(args.out, records)


if __name__ == "__main__":
    main()
