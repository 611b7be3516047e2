"""The JSON log formatter is the safety net behind "nothing personal in logs": fields named like
personal data are redacted and ID and mobile numbers are masked wherever they appear in a record."""

from __future__ import annotations

import json
import logging

from baoxue.observability import REDACTED, JsonFormatter

ID_NUMBER = "370406201505050012"
PHONE = "13812345678"


def formatted(message: str, *args: object, **extra: object) -> dict:
    record = logging.LogRecord("registry.feeds", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return json.loads(JsonFormatter("registry").format(record))


def test_personal_fields_and_numbers_never_reach_the_log_line():
    entry = formatted(
        "lookup of %s failed, guardian %s",
        ID_NUMBER,
        PHONE,
        id_number=ID_NUMBER,
        guardian_phone=PHONE,
        child_name="张小明",
        child={"id_number": ID_NUMBER, "hukou_address": "山亭区城头镇", "town": "370406101"},
        rows=[f"row 7: {ID_NUMBER[:17]}x"],
        batch_id="b-1",
        count=3,
    )
    line = json.dumps(entry, ensure_ascii=False)
    for personal in (ID_NUMBER, ID_NUMBER[:17] + "x", PHONE, "张小明", "山亭区城头镇"):
        assert personal not in line
    assert entry["message"] == f"lookup of {REDACTED} failed, guardian {REDACTED}"
    assert entry["id_number"] == entry["guardian_phone"] == entry["child_name"] == REDACTED
    assert entry["child"] == {"id_number": REDACTED, "hukou_address": REDACTED, "town": "370406101"}
    assert entry["rows"] == [f"row 7: {REDACTED}"]


def test_ids_codes_and_hashes_are_kept():
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    digest = "9f2c" + "1" * 20 + "ab" * 20
    entry = formatted(
        "job %s done", "job-42", batch_id="2026-W41", town="370406101", chain_hash=digest, count=123456789012
    )
    assert entry["message"] == "job job-42 done"
    assert entry["batch_id"] == "2026-W41" and entry["town"] == "370406101"
    assert entry["chain_hash"] == digest and entry["count"] == 123456789012
    assert formatted("trace %s", trace)["message"] == f"trace {trace}"
