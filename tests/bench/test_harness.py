"""The benchmark harness, so it cannot rot: its helpers, and B5 at a tiny size through run.py's machinery."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402
import run as bench_run  # noqa: E402


def test_median_of_returns_the_median_and_every_sample_in_order():
    values = iter([5.0, 1.0, 3.0])
    sampled = harness.median_of(lambda: next(values), 3)
    assert sampled.median == 3.0
    assert sampled.samples == [5.0, 1.0, 3.0]
    with pytest.raises(ValueError):
        harness.median_of(lambda: 1.0, 0)


async def test_paired_medians_alternate_the_two_paths():
    order: list[str] = []

    async def ours() -> float:
        order.append("baoxue")
        return float(len(order))

    async def theirs() -> float:
        order.append("comparator")
        return 10.0 * len(order)

    a, b = await harness.paired_medians_async(ours, theirs, 3)
    assert order == ["baoxue", "comparator"] * 3
    assert a.samples == [1.0, 3.0, 5.0] and a.median == 3.0
    assert b.samples == [20.0, 40.0, 60.0] and b.median == 40.0


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert harness.percentile(values, 99) == 99.0
    assert harness.percentile(values, 50) == 50.0
    assert harness.percentile([7.0], 99) == 7.0


def test_parse_sizes_accepts_suffixes():
    assert harness.parse_sizes("10k,100000,1M") == [10_000, 100_000, 1_000_000]
    with pytest.raises(Exception):
        harness.parse_sizes("0")


def test_peak_memory_sees_a_large_allocation():
    with harness.PeakMemory() as idle:
        pass
    with harness.PeakMemory() as peak:
        block = bytearray(200 * 2**20)
        block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
        del block
    assert peak.mb >= idle.mb + 150


def test_peak_memory_counts_a_child_process_started_inside_the_block():
    # A child's memory has no high-water mark this process can reset: it is sampled (the benchmarks'
    # spawned nats-server). This child starts after the block's first scan of the children.
    child_code = (
        "import sys, time\n"
        "block = bytearray(200 * 2**20)\n"
        "block[::4096] = b'x' * len(block[::4096])\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    with harness.PeakMemory() as idle:
        pass
    with harness.PeakMemory(rescan=0.05) as peak:
        child = subprocess.Popen(
            [sys.executable, "-c", child_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            time.sleep(0.3)  # a few samples while the child holds its memory
        finally:
            child.communicate("", timeout=30)
    assert peak.mb >= idle.mb + 150


def test_peak_memory_without_children_needs_no_sampler_on_linux():
    with harness.PeakMemory(include_children=False) as peak:
        exact = harness._high_water_mark_bytes() is not None
        sampler = peak._thread
    assert sampler is None or not exact
    assert peak.mb > 0


def test_record_json_has_the_agreed_keys_and_refuses_shadowing_extras():
    record = harness.Record("B0 x", 10, 2.0, 4.0, "ops/s", 0.5, "≥ 0.3", True, 12.5, 3, extra={"p99_ms": 4.0})
    data = record.to_json()
    assert set(harness.RECORD_KEYS) <= set(data) and data["p99_ms"] == 4.0
    assert harness.validate_record(data) == []
    assert harness.validate_record({"benchmark": "x"})
    with pytest.raises(ValueError):
        harness.Record("B0", 1, 1.0, 1.0, "u", 1.0, "g", True, None, 1, extra={"size": 3}).to_json()


def test_update_document_replaces_only_the_figures_section(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text(
        f"# P\n\nintro\n\n{bench_run.FIGURES_BEGIN}\nold\n{bench_run.FIGURES_END}\n\n## Scaling\ntext\n"
    )
    bench_run.update_document(doc, "new table")
    text = doc.read_text()
    assert "old" not in text and "new table" in text
    assert text.startswith("# P\n\nintro") and text.endswith("## Scaling\ntext\n")


def test_a_failing_script_is_reported_and_does_not_stop_the_others(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "b1_crash.py").write_text("import sys\nsys.exit(3)\n")
    (scripts / "b2_bad.py").write_text(
        textwrap.dedent(
            """
            import json, sys
            out = sys.argv[sys.argv.index("--out") + 1]
            json.dump([{"benchmark": "B2", "size": 1}], open(out, "w"))
            """
        )
    )
    (scripts / "b3_good.py").write_text(
        textwrap.dedent(
            """
            import sys
            from harness import Record, argument_parser, write_records
            args = argument_parser("good").parse_args()
            write_records(args.out, [Record("B3 good", s, 2.0, 1.0, "x/s", 2.0, "≥ 1", True, 1.0, args.repeats)
                                     for s in args.sizes])
            """
        )
    )
    (scripts / "b4_partial.py").write_text(
        textwrap.dedent(
            """
            import sys
            from harness import Record, argument_parser, write_records
            args = argument_parser("stopped half-way").parse_args()
            write_records(args.out, [Record("B4 partial", 5, 1.0, 1.0, "x/s", 1.0, "≥ 1", True, 1.0, 1)])
            sys.exit(1)
            """
        )
    )
    (scripts / "helper.py").write_text("raise SystemExit('not a benchmark')\n")
    found = bench_run.discover(bench_dir=scripts)
    assert [p.name for p in found] == ["b1_crash.py", "b2_bad.py", "b3_good.py", "b4_partial.py"]
    report, results = bench_run.run_suite(
        found,
        sizes=[5, 50],
        repeats=1,
        results_dir=tmp_path / "results",
        doc=tmp_path / "performance.md",
        nats_url="nats://127.0.0.1:1",
    )
    by_name = {r.script: r for r in results}
    assert not by_name["b1_crash.py"].ok and "exit status 3" in by_name["b1_crash.py"].problems[0]
    assert not by_name["b2_bad.py"].ok and any("missing baoxue" in p for p in by_name["b2_bad.py"].problems)
    assert by_name["b3_good.py"].ok
    assert not by_name["b4_partial.py"].ok and len(by_name["b4_partial.py"].records) == 1
    assert [(r["benchmark"], r["size"]) for r in report["records"]] == [
        ("B3 good", 5),
        ("B3 good", 50),
        ("B4 partial", 5),
    ]
    assert [s["ok"] for s in report["scripts"]] == [False, False, True, False]
    assert "b1_crash.py" in (tmp_path / "performance.md").read_text()


def test_a_run_of_some_scripts_keeps_the_others_earlier_records(tmp_path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name, figure in (("b1_one", 1.0), ("b2_two", 2.0)):
        (scripts / f"{name}.py").write_text(
            textwrap.dedent(
                f"""
                import os
                from harness import Record, argument_parser, write_records
                args = argument_parser("{name}").parse_args()
                figure = {figure} * float(os.environ.get("FACTOR", "1"))
                write_records(args.out, [Record("{name}", s, figure, 1.0, "x/s", figure, "≥ 1", True, 1.0,
                                                args.repeats) for s in args.sizes])
                """
            )
        )
    results_dir, doc = tmp_path / "results", tmp_path / "performance.md"

    def run(only: list[str], sizes: list[int], factor: str) -> dict:
        report, results = bench_run.run_suite(
            bench_run.discover(only, bench_dir=scripts), sizes=sizes, repeats=1, results_dir=results_dir,
            doc=doc, nats_url="nats://127.0.0.1:1", extra_env={"FACTOR": factor},
        )  # fmt: skip
        assert all(r.ok for r in results)
        return report

    first = run(["b1", "b2"], [5, 50], "1")
    assert [(r["script"], r["size"]) for r in first["records"]] == [
        ("b1_one.py", 5), ("b1_one.py", 50), ("b2_two.py", 5), ("b2_two.py", 50),
    ]  # fmt: skip
    second = run(["b2"], [500], "10")
    latest = json.loads((results_dir / "latest.json").read_text())
    assert latest["records"] == second["records"]
    # b1's rows stay as they were measured; b2's are all replaced by the new run's (500 only)
    assert [(r["script"], r["size"], r["baoxue"]) for r in second["records"]] == [
        ("b1_one.py", 5, 1.0), ("b1_one.py", 50, 1.0), ("b2_two.py", 500, 20.0),
    ]  # fmt: skip
    assert second["records"][0]["measured_at"] == first["records"][0]["measured_at"]
    assert all(r["measured_at"] for r in second["records"])
    assert second["sizes"] == [5, 50, 500]
    assert [(s["script"], s["sizes"]) for s in second["scripts"]] == [
        ("b1_one.py", [5, 50]),
        ("b2_two.py", [500]),
    ]
    text = doc.read_text()
    assert "### b1_one" in text and "### b2_two" in text and "| 500 |" in text and "| 50 |" in text


def test_b5_at_a_tiny_size_through_run_suite(baoxue_infra, tmp_path):
    backend = "postgresql" if baoxue_infra.database_server_url else "sqlite"
    doc = tmp_path / "performance.md"
    report, results = bench_run.run_suite(
        [BENCH / "b5_events.py"],
        sizes=[200],
        repeats=1,
        results_dir=tmp_path,
        doc=doc,
        database_url=baoxue_infra.database_server_url,
        nats_url=baoxue_infra.nats_url,
        extra_env={"BENCH_B5_BACKENDS": backend},
        timeout=300,
    )
    log = (tmp_path / "b5_events.log").read_text()
    assert results[0].ok, f"{results[0].problems}\n{log[-3000:]}"
    records = report["records"]
    assert {r["benchmark"].split(" (")[0] for r in records} == {
        "B5 events throughput",
        "B5 events p99 latency at 1,000/s",
    }
    for record in records:
        assert harness.validate_record(record) == []
        assert record["size"] == 200 and record["median_of"] == 1 and record["backend"] == backend
        assert record["lost"] == 0
        assert record["baoxue"] > 0 and record["comparator"] > 0 and record["ratio"] > 0
        assert isinstance(record["met"], bool)
        assert record["peak_memory_mb"] > 10
    throughput = next(r for r in records if r["unit"] == "events/s")
    assert throughput["duplicates"] == 0 and throughput["comparator_lost"] == 0
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert latest["records"] == records and latest["machine"]["cpu_logical"] >= 1
    assert latest["machine"]["nats_server"]
    assert (tmp_path / "growth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = doc.read_text()
    assert "### B5 events throughput" in text and "| 200 |" in text
