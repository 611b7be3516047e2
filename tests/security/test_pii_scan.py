"""The leak scanner (tools/security/pii_scan.py) finds a plaintext ID number and phone number planted in
each kind of place it scans: a database table (text and JSON columns, the run's PostgreSQL or SQLite), a
``dead_letter`` table, a log file and a message of a NATS stream (payload and headers, the run's NATS) —
so the "0 found" of the leak scans after a workload (test_pii_leaks, the end-to-end year, ``make demo``)
cannot come from a scanner that does not look. Without the planted values the same places give 0."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, Text, create_engine, insert

from baoxue.db import sync_url
from baoxue.testing.infrastructure import TestInfrastructure

from .seeds import fresh_id_number

_spec = importlib.util.spec_from_file_location(
    "pii_scan", Path(__file__).resolve().parents[2] / "tools" / "security" / "pii_scan.py"
)
assert _spec and _spec.loader
pii_scan = importlib.util.module_from_spec(_spec)
sys.modules["pii_scan"] = pii_scan
_spec.loader.exec_module(pii_scan)

CLEAN_ROWS = 40
MOBILE = "13912345678"


def _database(url: str, *, plant: dict[str, str] | None) -> None:
    """A table of notes (text and JSON) and a dead_letter table, clean rows plus the planted values."""
    metadata = MetaData()
    notes = Table(
        "notes",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("body", Text),
        Column("label", String(60)),
        Column("meta", JSON),
    )
    dead = Table(
        "dead_letter",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("error_code", String(100)),
        Column("envelope", Text),
    )
    engine = create_engine(sync_url(url))
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                insert(notes),
                [
                    {
                        "id": n,
                        "body": f"visit 2026-11-{n % 28 + 1:02d} 370406D01 case {n:08d}",
                        "label": "家访",
                        "meta": {"count": n, "at": "2026-11-26T18:00:00"},
                    }
                    for n in range(1, CLEAN_ROWS + 1)
                ],
            )
            conn.execute(
                insert(dead), [{"id": 1, "error_code": "bad_event", "envelope": '{"type":"x","data":{}}'}]
            )
            if plant:
                conn.execute(
                    insert(notes),
                    [
                        {
                            "id": 999,
                            "body": f"监护人 {plant['id']} 来电",
                            "label": "x",
                            "meta": {"tel": MOBILE},
                        }
                    ],
                )
                conn.execute(
                    insert(dead),
                    [
                        {
                            "id": 2,
                            "error_code": "bad_event",
                            "envelope": json.dumps({"id_number": plant["id"]}),
                        }
                    ],
                )
    finally:
        engine.dispose()


def test_a_planted_id_and_phone_in_a_database_and_its_dead_letters_are_found(
    baoxue_infra: TestInfrastructure,
) -> None:
    clean_url = baoxue_infra.database_url("scanclean")
    _database(clean_url, plant=None)
    found, cells = pii_scan.scan_database(clean_url)
    assert found == [] and cells == CLEAN_ROWS * 3 + 2

    idn = fresh_id_number()
    url = baoxue_infra.database_url("scanplant")
    _database(url, plant={"id": idn})
    tally: Counter[str] = Counter()
    found, cells = pii_scan.scan_database(url, tally=tally)
    assert cells == (CLEAN_ROWS + 1) * 3 + 2 * 2
    assert tally["dead-letter rows"] == 2 and tally["tables"] == 2
    got = sorted((f.source, f.where, f.kind) for f in found)
    assert got == [
        ("database", "notes.body#999", "id_number_18"),
        ("database", "notes.meta#999", "mobile"),
        ("dead_letter", "dead_letter.envelope#2", "id_number_18"),
    ]
    assert all(idn not in f.masked and MOBILE not in f.masked for f in found)  # the report never leaks


def test_a_planted_id_and_phone_in_a_log_file_are_found(tmp_path: Path) -> None:
    idn = fresh_id_number()
    clean = tmp_path / "clean.log"
    clean.write_text(
        "".join(
            f"2026-11-26 18:00:{n % 60:02d} INFO registry batch {n} rows 800 id 3704******0659\n"
            for n in range(200)
        ),
        encoding="utf-8",
    )
    planted = tmp_path / "planted.log"
    planted.write_text(
        f"INFO ok\nWARNING lookup failed for {idn}\nINFO guardian {MOBILE}\n", encoding="utf-8"
    )
    per_file: dict[str, int] = {}
    found, lines = pii_scan.scan_files([clean, planted], per_file=per_file)
    assert lines == 203 and per_file == {str(clean): 200, str(planted): 3}
    assert sorted((f.where, f.kind) for f in found) == [
        (f"{planted}:2", "id_number_18"),
        (f"{planted}:3", "mobile"),
    ]


async def test_a_planted_id_and_phone_on_a_nats_stream_are_found(
    baoxue_infra: TestInfrastructure, event_namespace: str
) -> None:
    """Two streams of a namespace (as the services name them), clean messages and two planted ones: the
    ID number in a payload, the phone in a header; read by namespace and by stream name."""
    idn = fresh_id_number()
    nc = await nats.connect(baoxue_infra.nats_url)
    js = nc.jetstream()
    names = [f"{event_namespace}_{svc}".upper() for svc in ("registry", "notify")]
    try:
        for svc, name in zip(("registry", "notify"), names, strict=True):
            await js.add_stream(StreamConfig(name=name, subjects=[f"{event_namespace}.{svc}.>"]))
            for n in range(30):
                await js.publish(
                    f"{event_namespace}.{svc}.thing.done", json.dumps({"n": n, "ok": True}).encode()
                )
        await js.publish(
            f"{event_namespace}.registry.child.registered", json.dumps({"id_number": idn}).encode()
        )
        await js.publish(f"{event_namespace}.notify.sms.sent", b"{}", headers={"X-To": MOBILE})
        per_stream: dict[str, int] = {}
        found, messages = await pii_scan.scan_streams(
            baoxue_infra.nats_url, event_namespace, per_stream=per_stream
        )
        assert messages == 62 and per_stream == {names[0]: 31, names[1]: 31}
        assert {(f.where, f.kind) for f in found} == {
            (f"{names[0]}#31", "id_number_18"),
            (f"{names[1]}#31", "mobile"),
        }
        assert len(found) == 2
        found, messages = await pii_scan.scan_streams(baoxue_infra.nats_url, streams=[names[1]])
        assert messages == 31 and [f.kind for f in found] == ["mobile"]
        with pytest.raises(Exception):  # a stream that does not exist is not "0 found"
            await pii_scan.scan_streams(baoxue_infra.nats_url, streams=[f"{event_namespace}_NONE".upper()])
    finally:
        for name in names:
            with contextlib.suppress(Exception):
                await js.delete_stream(name)
        await nc.close()


async def test_the_command_exits_1_on_a_planted_value_and_reports_what_it_read(
    baoxue_infra: TestInfrastructure, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = baoxue_infra.database_url("scancli")
    _database(url, plant=None)
    log = tmp_path / "service.log"
    log.write_text("INFO started\n", encoding="utf-8")
    args = ["--database", url, "--logs", str(log), "--json"]
    assert await asyncio.to_thread(pii_scan.main, args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["read"]["database cells"] == CLEAN_ROWS * 3 + 2 and report["read"]["log lines"] == 1
    assert report["findings"] == {"id_number": 0, "phone": 0}

    log.write_text(f"INFO started\nERROR guardian {MOBILE} unreachable\n", encoding="utf-8")
    assert await asyncio.to_thread(pii_scan.main, args) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1])["findings"] == {"id_number": 0, "phone": 1}
    assert MOBILE not in "\n".join(lines)
