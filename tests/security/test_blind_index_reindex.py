"""``baoxue pii reindex``: every stored blind index moved to a new blind-index key, in every service.

Registry, enrollment and casework run with the old key and exchange their events over real NATS: a
police feed registers three children (ID numbers and guardian phones), enrollment's read model learns
them, two of them get student records, one record drops out (casework opens a case from the event,
with the blind index only) and a school opens a case by hand with the other's ID number; the provincial
platform's records show one registered child and one child unknown here. Every place that holds one of
those blind indexes must be a declared column (or the published history of the outbox); every declared
column must hold some. Then the command runs with the old and the new key: per column the count it
rewrote, a second run rewrites none, no old index is left outside the outbox's history, every index is
the new key's value of its plaintext (the unknown child's provincial record is reported and left), and
services started with the new key find the children and records by ID number again.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import pytest
from sqlalchemy import insert, select

from baoxue.cli import main as baoxue_cli
from baoxue.pii.crypto import BlindIndex
from baoxue.testing.attacks import ROLE_ORGS
from baoxue.testing.plugin import RunningService, eventually
from casework.cases.models import Case
from casework.readmodels.models import StudentRecord as CaseworkStudent
from enrollment.children.models import ChildView
from enrollment.provincial.models import ProvincialRecord

from .seeds import fresh_id_number, police_row, school_case, submit_police_feed

OLD_KEY = base64.b64encode(b"blind-index-key-before-the-change").decode()
NEW_KEY = base64.b64encode(b"blind-index-key-after-the-change!").decode()
OLD, NEW = BlindIndex.from_setting(OLD_KEY), BlindIndex.from_setting(NEW_KEY)
SCHOOL, BUREAU = ROLE_ORGS["school"], ROLE_ORGS["bureau"]
HEX64 = re.compile(r"[0-9a-f]{64}")
# Where an old index may stay: events already published (the outbox keeps them until its retention ends;
# they are history and are not read again).
HISTORY = {"outbox.envelope"}


async def _where(services: list[RunningService], values: set[str]) -> dict[str, set[str]]:
    """Every ``service:table.column`` holding one of ``values`` anywhere in a cell (JSON included)."""
    found: dict[str, set[str]] = {}
    for svc in services:
        async with svc.ctx.db.transaction() as s:
            for table in svc.spec.metadata.sorted_tables:
                for row in (await s.execute(select(table))).mappings():
                    for name, cell in row.items():
                        if isinstance(cell, str):
                            for match in HEX64.finditer(cell):
                                if match.group(0) in values:
                                    found.setdefault(f"{table.name}.{name}", set()).add(match.group(0))
    return found


def _reindex(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    services: list[RunningService],
    *options: str,
    expect: int = 0,
    nats_url: str | None = None,
) -> str:
    """``baoxue pii reindex`` over the services' databases and NATS namespace, with the old key and the
    new one; its standard output (and error, if it does not exit with ``expect``)."""
    argv = ["pii", "reindex", "--batch", "2", *options]
    for svc in services:
        prefix = svc.spec.name.upper() + "_"
        env = {
            "DATABASE_URL": svc.settings.database_url,
            "BLIND_INDEX_KEY": OLD_KEY,
            "NEW_BLIND_INDEX_KEY": NEW_KEY,
            "ENVIRONMENT": "test",
            "NATS_URL": nats_url or svc.settings.nats_url,
            "EVENT_NAMESPACE": svc.settings.event_namespace,
            "JWT_PUBLIC_KEY_FILE": str(svc.settings.jwt_public_key_file),
        }
        for name, value in env.items():
            monkeypatch.setenv(prefix + name, value)
        argv += ["--service", svc.spec.name]
    capsys.readouterr()
    code = baoxue_cli(argv)
    out = capsys.readouterr()
    assert code == expect, out.out + out.err
    return out.out if expect == 0 else out.err


async def _count(svc: RunningService, model: Any) -> int:
    async with svc.ctx.db.transaction() as s:
        return len((await s.execute(select(model))).scalars().all())


async def _values(svc: RunningService, column: Any) -> set[str]:
    async with svc.ctx.db.transaction() as s:
        return {v for v in (await s.execute(select(column))).scalars() if v is not None}


async def test_reindex_moves_every_blind_index_to_the_new_key(start_service, tokens, monkeypatch, capsys):
    registry = await start_service("registry", blind_index_key=OLD_KEY)
    enrollment = await start_service("enrollment", blind_index_key=OLD_KEY)
    casework = await start_service("casework", blind_index_key=OLD_KEY)
    services = [registry, enrollment, casework]
    for svc in services:
        await svc.wait_events_ready()
    school = tokens.headers("school", SCHOOL)

    a, b, c, unknown = (fresh_id_number("20150911") for _ in range(4))
    phones = {a: "13912345670", b: "13912345671", c: "13912345672"}
    rows = [police_row(idn, phone, n) for n, (idn, phone) in enumerate(phones.items())]
    assert (await submit_police_feed(registry, tokens, rows))["accepted"] == 3
    await eventually(lambda: _has(enrollment, ChildView, 3), timeout=30)

    students = {}
    for idn in (a, b):
        r = await enrollment.client.post(
            "/v1/students",
            json={"school_code": SCHOOL, "grade": 5, "id_number": idn, "student_number": "G" + idn},
            headers=school,
        )
        assert r.status_code == 201, r.text
        assert r.json()["child_id"] is not None  # linked to the registry's child through the index
        students[idn] = r.json()["id"]
    out = await enrollment.client.post(
        f"/v1/students/{students[a]}/dropout", headers=school, json={"on": "2026-10-08", "reason": "illness"}
    )
    assert out.status_code == 200, out.text
    case = await casework.client.post(
        "/v1/cases",
        json=school_case(students[b], b),
        headers=school,
    )
    assert case.status_code == 201, case.text
    async with enrollment.ctx.db.transaction() as s:
        await s.execute(
            insert(ProvincialRecord),
            [
                {
                    "platform_record_id": f"p-{n}",
                    "id_blind_index": OLD.of(idn),
                    "school_code": "370406900",
                    "province_code": "37",
                    "status": "active",
                    "batch_id": "province-2026-10",
                }
                for n, idn in enumerate((c, unknown))
            ],
        )
    await eventually(lambda: _has(casework, CaseworkStudent, 2), timeout=30)
    await eventually(lambda: _has(casework, Case, 2), timeout=30)  # one opened from the dropout event
    for svc in services:
        await svc.drain_outbox()

    plaintexts = [a, b, c, unknown, *phones.values(), *("G" + idn for idn in (a, b))]
    old_values = {OLD.of(p) for p in plaintexts}
    declared = {f"{c.name}" for svc in services for c in svc.spec.blind_index_columns}
    stored = await _where(services, old_values)
    undeclared = set(stored) - declared - HISTORY
    assert not undeclared, (
        f"blind indexes in columns no service declares (reindex would miss them): {undeclared}"
    )
    assert declared <= set(stored), f"the workload stored no index in {declared - set(stored)}"

    first = await asyncio.to_thread(_reindex, monkeypatch, capsys, services)
    expected = {
        "registry: done: children.id_blind: 3 rewritten, 3 under the new key",
        "registry: done: child_attributes.value: 3 rewritten, 3 under the new key",
        "registry: done: feed_rows.id_blind: 3 rewritten, 3 under the new key",
        "registry: done: feed_rows.guardian_phone_blind: 3 rewritten, 3 under the new key",
        "enrollment: done: student_records.id_blind_index: 2 rewritten, 2 under the new key",
        "enrollment: done: student_records.student_number_index: 2 rewritten, 2 under the new key",
        "enrollment: done: children.id_blind_index: 3 rewritten, 3 under the new key",
        "enrollment: done: provincial_records.id_blind_index: 1 rewritten, 1 under the new key, 1 unknown "
        "(no token gives them; left as they are)",
        "casework: done: cases.id_blind_index: 2 rewritten, 2 under the new key",
        "casework: done: student_records.id_blind_index: 2 rewritten, 2 under the new key",
    }
    assert expected <= set(first.splitlines()), first
    assert "1 stored indexes are known to no token" in first
    again = await asyncio.to_thread(_reindex, monkeypatch, capsys, services)
    assert {re.sub(r" \d rewritten", " 0 rewritten", line) for line in expected} <= set(again.splitlines())

    left = await _where(services, old_values)
    assert set(left) <= HISTORY | {"provincial_records.id_blind_index"}, left
    assert left.get("provincial_records.id_blind_index") == {OLD.of(unknown)}
    assert await _values(registry, registry.spec.metadata.tables["children"].c.id_blind) == {
        NEW.of(x) for x in (a, b, c)
    }
    assert await _values(enrollment, ChildView.id_blind_index) == {NEW.of(x) for x in (a, b, c)}
    assert await _values(enrollment, ProvincialRecord.id_blind_index) == {NEW.of(c), OLD.of(unknown)}
    assert await _values(casework, Case.id_blind_index) == {NEW.of(a), NEW.of(b)}
    assert await _values(casework, CaseworkStudent.id_blind_index) == {NEW.of(a), NEW.of(b)}

    # Services started with the new key find what was stored under the old one.
    new_registry = await start_service("registry", blind_index_key=NEW_KEY)
    bureau = tokens.headers("bureau", BUREAU, purpose="blind-index key change test")
    for idn in (a, b, c):
        r = await new_registry.client.post("/v1/children/lookup", json={"id_number": idn}, headers=bureau)
        assert r.status_code == 200 and r.json()["id_number"] == idn, r.text
    new_enrollment = await start_service("enrollment", blind_index_key=NEW_KEY)
    second = await new_enrollment.client.post(
        "/v1/students",
        json={"school_code": SCHOOL, "grade": 5, "id_number": b, "student_number": f"L{b[:17]}9"},
        headers=school,
    )
    assert second.status_code == 409 and second.json()["code"] == "active_record_exists", second.text


async def _has(svc: RunningService, model: Any, n: int) -> bool:
    return await _count(svc, model) >= n


def test_reindex_refuses_without_a_new_key_or_with_the_same_one(monkeypatch, capsys):
    for name in ("BLIND_INDEX_KEY", "NEW_BLIND_INDEX_KEY"):
        monkeypatch.delenv(f"BAOXUE_{name}", raising=False)
    monkeypatch.setenv("BAOXUE_BLIND_INDEX_KEY", OLD_KEY)
    assert baoxue_cli(["pii", "reindex", "--service", "registry"]) == 2
    assert "NEW_BLIND_INDEX_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("BAOXUE_NEW_BLIND_INDEX_KEY", OLD_KEY)
    assert baoxue_cli(["pii", "reindex", "--service", "registry"]) == 2
    assert "the new blind-index key is the current one" in capsys.readouterr().err
    monkeypatch.setenv("BAOXUE_NEW_BLIND_INDEX_KEY", "not base64!")
    assert baoxue_cli(["pii", "reindex", "--service", "registry"]) == 2
    err = capsys.readouterr().err
    assert "new_blind_index_key is not valid base64" in err and "not base64!" not in err
    monkeypatch.setenv("BAOXUE_NEW_BLIND_INDEX_KEY", NEW_KEY)
    monkeypatch.setenv("ENROLLMENT_BLIND_INDEX_KEY", NEW_KEY)
    assert baoxue_cli(["pii", "reindex", "--service", "registry", "--service", "enrollment"]) == 2
    assert "every service must have the same BLIND_INDEX_KEY" in capsys.readouterr().err


async def test_reindex_refuses_while_a_consumer_has_events_with_old_indexes_to_apply(
    start_service, tokens, monkeypatch, capsys
):
    """Enrollment has not consumed the registry's ChildRegistered events (its consumers are off): they
    carry the old key's blind indexes, and would put them into its read model after the change."""
    registry = await start_service("registry", blind_index_key=OLD_KEY)
    enrollment = await start_service("enrollment", blind_index_key=OLD_KEY, consumers_enabled=False)
    await registry.wait_events_ready()
    rows = [police_row(fresh_id_number("20150911"), "13912345670", 0)]
    assert (await submit_police_feed(registry, tokens, rows))["accepted"] == 1
    await registry.drain_outbox()
    children = registry.spec.metadata.tables["children"].c.id_blind

    monkeypatch.setattr("baoxue.cli.NATS_CHECK_SECONDS", 1.0)
    err = await asyncio.to_thread(
        _reindex, monkeypatch, capsys, [registry, enrollment], expect=2, nats_url="nats://127.0.0.1:9"
    )
    assert "enrollment: cannot read its consumers' state from NATS (TimeoutError); refused" in err, err

    err = await asyncio.to_thread(_reindex, monkeypatch, capsys, [registry, enrollment], expect=2)
    assert (
        "enrollment: registry's events: the consumer enrollment__from__registry was never created" in err
    ), err
    assert "refused: those events carry blind indexes under the old key" in err
    assert await _values(registry, children) == {OLD.of(rows[0]["身份证号"])}  # nothing rewritten

    skipped = await asyncio.to_thread(
        _reindex, monkeypatch, capsys, [registry, enrollment], "--no-consumer-check"
    )
    assert "registry: done: children.id_blind: 1 rewritten, 1 under the new key" in skipped
