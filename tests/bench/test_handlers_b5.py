"""``bench/handlers_b5.py`` (the enrollment consumer, per-event vs set-based) at a tiny size, so it cannot rot;
and ``make bench`` does not pick it up (it is a standalone tool)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402
import run as bench_run  # noqa: E402


def test_handlers_b5_is_not_a_suite_benchmark():
    assert BENCH / "handlers_b5.py" not in bench_run.discover()


def test_handlers_b5_at_a_tiny_size(baoxue_infra, tmp_path):
    backend = "postgresql" if baoxue_infra.database_server_url else "sqlite"
    out = tmp_path / "handlers_b5.json"
    env = {**os.environ, "BENCH_NATS_URL": baoxue_infra.nats_url}
    if baoxue_infra.database_server_url:
        env["BENCH_DATABASE_URL"] = baoxue_infra.database_server_url
    command = [sys.executable, str(BENCH / "handlers_b5.py"), "--sizes", "200", "--repeats", "1"]
    command += ["--backends", backend, "--out", str(out)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [record] = json.loads(out.read_text())
    assert harness.validate_record(record) == []
    assert record["size"] == 200 and record["backend"] == backend and record["records_linked"] == 100
    assert record["baoxue"] > 0 and record["comparator"] > 0  # each run checked its effects (else exit 1)
