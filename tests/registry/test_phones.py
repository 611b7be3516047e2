"""Guardian phones: encrypted at rest everywhere, masked in responses, compared by blind index."""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import io
import re
import sys
from pathlib import Path

from sqlalchemy import String, Text, select

from tests.registry.conftest import BUREAU, csv_body, dept_headers, submit
from tests.registry.people import LI, WANG, ZHAO

_SCANNER = Path(__file__).resolve().parents[2] / "tools" / "security" / "pii_scan.py"


def _pii_scan():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("pii_scan", _SCANNER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("pii_scan", module)
    spec.loader.exec_module(module)
    return module


# The PII scanner's pattern (tools/security/pii_scan.py): a mobile number not inside a longer token.
MOBILE = re.compile(r"(?<![0-9A-Za-z])1\d{10}(?![0-9A-Za-z])")


async def _text_values(svc) -> list[tuple[str, str]]:
    """(table.column, value) of every text value in every registry table."""
    out = []
    async with svc.ctx.db.transaction() as s:
        for table in svc.spec.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            if not columns:
                continue
            for row in (await s.execute(select(*columns))).all():
                out += [(f"{table.name}.{c.name}", v) for c, v in zip(columns, row, strict=True) if v]
    return out


async def _detail(svc, tokens, id_number: str, purpose: str | None = None) -> dict:
    r = await svc.client.post(
        "/v1/children/lookup",
        json={"id_number": id_number},
        headers=tokens.headers("bureau", BUREAU, purpose=purpose),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _conflicts(svc, tokens) -> set[tuple[str, str]]:
    r = await svc.client.get(
        "/v1/review-items", params={"kind": "conflict"}, headers=tokens.headers("bureau", BUREAU)
    )
    return {(i["child_id"], i["attribute"]) for i in r.json()["items"]}


async def test_no_plaintext_phone_in_any_registry_table_after_feeds(start_service, tokens):
    svc = await start_service("registry")
    phones = [WANG.phone, LI.phone, ZHAO.phone, "13612345678", "0632-1234567"]
    rows = [
        WANG.row(),
        LI.row(phone="+86 139-0000-0002"),
        ZHAO.row(name=""),  # rejected: its raw cells are kept for the error report
        WANG.row(name="王小明=", phone="13612345678"),  # rejected (cell formula), another phone
        ZHAO.row(id="", phone="0632-1234567", category="建档立卡"),
    ]
    await submit(svc, tokens, "police", "2026-09", csv_body(*rows[:4]))
    await submit(svc, tokens, "police", "2026-03", csv_body(*rows[:3]), mode="validate")
    await submit(svc, tokens, "poverty", "2026-09", csv_body(rows[4], WANG.row(category="建档立卡")))
    values = await _text_values(svc)
    assert any(where == "children.guardian_phone" for where, _ in values)  # the scan sees the column
    hits = [where for where, v in values if MOBILE.search(v)]
    assert hits == []
    digits = [p.replace("-", "") for p in phones]
    assert [where for where, v in values if any(d in v.replace("-", "") for d in digits)] == []
    # The error report still gives the department its own cells back (decrypted from raw_cipher).
    batch = (await svc.client.get("/v1/feeds/batches", headers=dept_headers(tokens, "police"))).json()
    committed = next(b for b in batch["items"] if b["mode"] == "commit")
    report = await svc.client.get(
        f"/v1/feeds/batches/{committed['id']}/errors", headers=dept_headers(tokens, "police")
    )
    lines = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    phone_col = lines[0].index("监护人电话")
    assert {line[phone_col] for line in lines[1:]} >= {ZHAO.phone, "13612345678"}


async def test_phone_masked_unless_role_and_purpose_and_the_read_is_audited(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))
    masked = await _detail(svc, tokens, WANG.id)
    assert masked["guardian_phone"] == WANG.phone[:3] + "****" + WANG.phone[-4:]
    phone_assertions = [a for a in masked["provenance"] if a["attribute"] == "guardian_phone"]
    assert [a["value"] for a in phone_assertions] == ["138****0001"]
    assert WANG.phone not in str(masked)
    inspector = (
        await svc.client.post(
            "/v1/children/lookup",
            json={"id_number": WANG.id},
            headers=tokens.headers("inspector", "370406D07", purpose="supervision"),
        )
    ).json()
    assert inspector["guardian_phone"] == "138****0001"
    full = await _detail(svc, tokens, WANG.id, purpose="home visit")
    assert full["guardian_phone"] == WANG.phone
    assert [a["value"] for a in full["provenance"] if a["attribute"] == "guardian_phone"] == [WANG.phone]
    table = svc.spec.tables.audit
    async with svc.ctx.db.transaction() as s:
        last = (await s.execute(select(table).order_by(table.c.position.desc()).limit(1))).mappings().one()
    assert (last["action"], last["resource_ids"], last["purpose"]) == ("lookup", full["id"], "home visit")
    assert "unmasked=True" in last["detail"] and WANG.phone not in str(dict(last))


async def test_two_departments_disagreeing_on_the_phone_open_a_conflict(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), LI.row()))
    # The same phone from civil affairs (written differently): no conflict.
    await submit(svc, tokens, "civil", "2026-09", csv_body(WANG.row(phone="138 0000 0001", category="留守")))
    assert await _conflicts(svc, tokens) == set()
    wang = await _detail(svc, tokens, WANG.id, purpose="data quality review")
    assert {
        (a["department"], a["value"]) for a in wang["provenance"] if a["attribute"] == "guardian_phone"
    } == {
        ("police", WANG.phone),
        ("civil", WANG.phone),
    }
    # The poverty office gives another phone for WANG: a conflict on the guardian phone.
    await submit(
        svc, tokens, "poverty", "2026-09", csv_body(WANG.row(phone="13512345678", category="建档立卡"))
    )
    assert await _conflicts(svc, tokens) == {(wang["id"], "guardian_phone")}
    wang = await _detail(svc, tokens, WANG.id, purpose="data quality review")
    assert wang["needs_review"] is True and wang["guardian_phone"] == "13512345678"  # the latest feed's


async def test_one_department_changing_its_phone_is_an_update_not_a_conflict(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-03", csv_body(WANG.row()))
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(phone="13512345678")))
    assert await _conflicts(svc, tokens) == set()
    wang = await _detail(svc, tokens, WANG.id, purpose="data quality review")
    assert wang["guardian_phone"] == "13512345678"


async def test_error_report_shows_cells_only_to_the_submitting_department(start_service, tokens):
    svc = await start_service("registry")
    batch = await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), ZHAO.row(id="123")))

    async def report(headers: dict[str, str]) -> list[str]:
        r = await svc.client.get(f"/v1/feeds/batches/{batch['id']}/errors", headers=headers)
        assert r.status_code == 200, r.text
        return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))[1]

    own = await report(dept_headers(tokens, "police"))
    assert own[4:12] == ZHAO.row(id="123").split(",")[:8]
    for headers in (
        tokens.headers("bureau", BUREAU, purpose="data quality review"),
        tokens.headers("inspector", "370406D07", purpose="supervision"),
    ):
        other = await report(headers)
        assert other[4] == "赵**" and other[4 + 7] == "137****0003"
        assert ZHAO.phone not in other and ZHAO.name not in other and ZHAO.guardian not in other
    assert (
        await svc.client.get(f"/v1/feeds/batches/{batch['id']}/errors", headers=dept_headers(tokens, "civil"))
    ).status_code == 404


async def test_the_pii_scanner_finds_nothing_after_the_generated_districts_feeds(
    start_service, tokens, district
):
    """All eight generated feeds (phones, landlines, ID numbers, rejected rows) in: the security team's
    scanner (tools/security/pii_scan.py) reads every text cell of the registry database and finds none."""
    svc = await start_service("registry")
    for period in ("2026-03", "2026-09"):
        for dept in ("police", "poverty", "dpf", "civil"):
            await submit(svc, tokens, dept, period, (district / f"feeds/{period}/{dept}.csv").read_bytes())
    feed = (district / "feeds/2026-09/police.csv").read_text(encoding="utf-8")
    assert MOBILE.search(feed)  # the feeds do carry phones
    findings, cells = await asyncio.to_thread(_pii_scan().scan_database, svc.settings.database_url)
    assert cells > 5000
    assert [(f.where.split("#")[0], f.kind) for f in findings] == []
