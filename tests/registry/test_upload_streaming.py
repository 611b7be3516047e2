"""A spreadsheet uploaded as multipart/form-data is sealed into the spool as it streams: a file of
1.8 MiB (over the 1 MiB at which a framework's form parser spills to a plain temporary file) is
applied whole, and a body that breaks off leaves nothing behind."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tracemalloc

import pytest

from baoxue.errors import Problem
from baoxue.pii.citizen_id import check_character
from baoxue.pii.crypto import FieldCipher
from baoxue.pii.files import SealedFile
from registry.feeds.parsing import inspect_feed, read_rows
from registry.feeds.uploads import spool_dir
from tests.registry.conftest import HEADER, csv_body, dept_headers, wait_job

ROWS = 24_000  # about 1.8 MiB of GBK CSV


def _rows(n: int) -> list[str]:
    rows = []
    for i in range(n):
        birth = dt.date(2013, 1, 1) + dt.timedelta(days=i % 2500)
        first17 = f"370406{birth:%Y%m%d}{i % 1000:03d}"
        idn = first17 + check_character(first17)
        sex = "男" if int(idn[16]) % 2 else "女"
        rows.append(f"张{i},{idn},{sex},{birth.isoformat()},山亭区店子镇前庄村{i}号,,,,常住,,")
    return rows


async def test_a_large_multipart_upload_is_applied_whole(start_service, tokens):
    svc = await start_service("registry")
    headers = dept_headers(tokens, "police")
    body = csv_body(*_rows(ROWS), encoding="gbk")
    assert len(body) > 1.5 * (1 << 20)
    r = await svc.client.post(
        "/v1/feeds/police/2026-09/uploads",
        headers=headers,
        params={"mode": "validate"},
        data={"note": "a form field beside the file is ignored"},
        files={"file": ("公安.csv", body, "text/csv")},
    )
    assert r.status_code == 202, r.text
    assert r.json()["rows_total"] == ROWS
    job = await wait_job(svc.client, headers, r.json()["job_id"], timeout=240)
    assert job["status"] == "succeeded", job
    assert job["counts"]["rows_total"] == ROWS


async def test_a_body_that_breaks_off_is_a_422_problem_and_leaves_nothing(start_service, tokens):
    svc = await start_service("registry")
    headers = dept_headers(tokens, "police")
    boundary = "b0undary"
    part = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode() + csv_body(*_rows(3000), header=HEADER)
    r = await svc.client.post(  # no closing boundary: the upload broke off
        "/v1/feeds/police/2026-09/uploads",
        headers=headers | {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=part,
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "feed_file_truncated"
    spool = spool_dir(svc.settings)
    left = await asyncio.to_thread(lambda: list(spool.iterdir()) if spool.exists() else [])
    assert left == []


def test_a_json_batch_is_read_a_row_at_a_time(tmp_path):
    """A ``{"rows": [...]}`` batch is inspected and read streaming: the memory it takes does not grow with
    the document (json.load held the whole document and every row of it at once), and the rows are the
    document's."""
    cipher = FieldCipher({"k1": b"0123456789abcdef"}, "k1")
    fields = ("name", "id_number", "sex", "birth_date", "hukou_address")
    rows = [dict(zip(fields, r.split(",")[:5], strict=True)) for r in _rows(30_000)]
    source = SealedFile(tmp_path / "batch.json", cipher)
    with source.create() as fh:
        fh.write(json.dumps({"client": "P-1", "rows": rows}, ensure_ascii=False).encode())
    assert source.size() > 3_000_000
    tracemalloc.start()
    try:
        shape = inspect_feed(source, "json", max_rows=100_000)
        read = 0
        for number, cells, malformed in read_rows(source, "json", None):
            read += 1
            assert not malformed
            if number in (1, 30_000):
                assert cells == rows[number - 1]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (shape.rows, read) == (30_000, 30_000)
    # json.load: about 30 MB for this document. Streaming takes about 1 MB; the bound leaves room for what
    # else the test process allocates meanwhile (tracemalloc counts every thread).
    assert peak < 8_000_000, peak


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_a_large_csv_cut_inside_its_last_character_is_truncated(tmp_path, encoding):
    """Decoding streams a chunk at a time (a character may straddle two chunks: that is no error); a file
    that ends inside a character is truncated, whichever encoding it is in."""
    cipher = FieldCipher({"k1": b"0123456789abcdef"}, "k1")
    body = csv_body(*_rows(ROWS), encoding=encoding)
    assert len(body) > 1.5 * (1 << 20)
    whole = SealedFile(tmp_path / "whole.csv", cipher)
    with whole.create() as fh:
        fh.write(body)
    assert inspect_feed(whole, "csv", max_rows=100_000).rows == ROWS
    cut = SealedFile(tmp_path / "cut.csv", cipher)
    with cut.create() as fh:
        fh.write(body[:-4])  # inside 住 of the last row's 常住
    with pytest.raises(Problem) as caught:
        inspect_feed(cut, "csv", max_rows=100_000)
    assert (caught.value.status, caught.value.code) == (422, "feed_file_truncated")
