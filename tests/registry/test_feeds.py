"""Feed submission: formats, file-level problems, dry run, batch idempotency, error reports, templates, calendar."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from openpyxl import Workbook, load_workbook
from openpyxl.worksheet.formula import ArrayFormula
from sqlalchemy import func, select

from registry.children.models import Child
from tests.registry.conftest import BUREAU, HEADER, INSPECTOR, csv_body, dept_headers, submit, wait_job
from tests.registry.people import LI, WANG, ZHAO

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _children(svc) -> int:
    async with svc.ctx.db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(Child))).scalar_one())


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    for r in rows:
        sheet.append(r)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_csv_gbk_xlsx_json_and_ndjson_are_all_accepted(start_service, tokens):
    svc = await start_service("registry")
    gbk = await submit(svc, tokens, "civil", "2026-09", csv_body(LI.row(category="低保"), encoding="gbk"))
    assert (gbk["accepted"], gbk["rejected"]) == (1, 0)
    xlsx = await submit(svc, tokens, "police", "2026-09", _xlsx([WANG.row().split(",")]), content_type=XLSX)
    assert xlsx["accepted"] == 1 and xlsx["source_format"] == "xlsx"
    row = dict(
        zip(
            ("name", "id_number", "sex", "birth_date", "hukou_address"),
            ZHAO.row().split(",")[:5],
            strict=True,
        )
    )
    js = await submit(
        svc,
        tokens,
        "poverty",
        "2026-09",
        json.dumps({"rows": [row | {"categories": "建档立卡"}]}).encode(),
        content_type="application/json",
    )
    assert js["accepted"] == 1
    chinese_keys = dict(zip(HEADER.split(","), WANG.row(category="建档立卡").split(","), strict=True))
    nd = await submit(
        svc,
        tokens,
        "poverty",
        "2026-03",
        (json.dumps(chinese_keys, ensure_ascii=False) + "\n").encode(),
        content_type="application/x-ndjson",
    )
    assert nd["accepted"] == 1
    assert await _children(svc) == 3  # WANG twice (police, poverty) is one child


async def test_file_upload_multipart(start_service, tokens):
    svc = await start_service("registry")
    headers = dept_headers(tokens, "police")
    r = await svc.client.post(
        "/v1/feeds/police/2026-09/uploads",
        headers=headers,
        files={"file": ("公安.csv", csv_body(WANG.row()), "text/csv")},
    )
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/jobs/{r.json()['job_id']}"
    job = await wait_job(svc.client, headers, r.json()["job_id"])
    assert job["status"] == "succeeded" and job["counts"]["accepted"] == 1


async def test_upload_with_the_file_sent_as_a_text_part_is_a_422_problem(start_service, tokens):
    svc = await start_service("registry")
    headers = dept_headers(tokens, "police")
    body = csv_body(WANG.row())
    for form in (
        {"data": {"file": body.decode()}},  # an ordinary form field
        {"files": {"file": (None, body, "text/csv")}},  # a part without a file name
        {"files": {"file": (None, csv_body(WANG.row(), encoding="gbk"))}},  # not even UTF-8
    ):
        r = await svc.client.post("/v1/feeds/police/2026-09/uploads", headers=headers, **form)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "file_required" and WANG.id not in r.text
    r = await svc.client.post(
        "/v1/feeds/police/2026-09/uploads", headers=headers, files={"other": ("a.csv", body, "text/csv")}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    assert await _children(svc) == 0


async def test_file_level_problems(start_service, tokens):
    svc = await start_service("registry")
    h = dept_headers(tokens, "police")

    problems: list[str] = []  # every problem's text: none may echo a row's personal data

    async def post(body: bytes, ctype: str = "text/csv") -> tuple[int, dict]:
        r = await svc.client.post(
            "/v1/feeds/police/2026-09/batches", content=body, headers=h | {"Content-Type": ctype}
        )
        problems.append(r.text)
        return r.status_code, r.json()

    truncated = csv_body(WANG.row()) + f'{LI.name},"{LI.id},女'.encode()
    assert (await post(truncated))[1]["code"] == "feed_file_truncated"
    assert (await post(_xlsx([WANG.row().split(",")])[:300], XLSX))[1]["code"] == "feed_file_truncated"
    assert (await post(b'{"rows": [{"name": "x"', "application/json"))[1]["code"] == "feed_file_truncated"
    status, body = await post(csv_body(WANG.row()).decode().encode("utf-16"))
    assert (status, body["code"]) == (415, "feed_encoding_unreadable")
    status, body = await post("姓名,身份证\n王,1\n".encode())
    assert body["code"] == "feed_header_invalid" and "户籍地址" in body["missing_columns"]
    assert (await post(b""))[1]["code"] == "feed_empty"
    assert (await post(HEADER.encode() + b"\n"))[1]["code"] == "feed_empty"
    status, body = await post(csv_body(WANG.row(name="王" * 20000)))
    assert (status, body["code"]) == (413, "feed_row_too_large")
    assert (await post(b"x", "application/pdf"))[1]["code"] == "feed_unsupported_format"
    r = await svc.client.post(
        "/v1/feeds/police/2026-05/batches",
        content=csv_body(WANG.row()),
        headers=h | {"Content-Type": "text/csv"},
    )
    assert r.json()["code"] == "feed_period_invalid"
    small = await start_service("registry", feed_max_bytes=100)
    r = await small.client.post(
        "/v1/feeds/police/2026-09/batches",
        content=csv_body(WANG.row()),
        headers=h | {"Content-Type": "text/csv"},
    )
    assert (r.status_code, r.json()["code"]) == (413, "feed_file_too_large")
    problems.append(r.text)
    for text in problems:
        echoed = [v for v in (WANG.name, WANG.id, LI.name, LI.id, "王" * 20) if v in text]
        assert not echoed, (echoed, text[:200])


async def test_a_csv_cut_inside_a_character_is_a_truncated_file_not_another_encoding(start_service, tokens):
    """Most cuts of a Chinese CSV fall inside a character: the file decodes as UTF-8 (or GBK) but for an
    incomplete character at its very end. That is a truncated file (422), not one in an unknown
    encoding (415, which would send the clerk to re-save it in another encoding)."""
    svc = await start_service("registry")
    h = dept_headers(tokens, "police") | {"Content-Type": "text/csv"}
    utf8 = csv_body(WANG.row(), LI.row())  # ends 常住,,\n: 住 is three bytes in UTF-8, two in GBK
    gbk = csv_body(WANG.row(), LI.row(), encoding="gbk")
    for cut in (utf8[:-4], utf8[:-5], gbk[:-4], csv_body(WANG.row(), LI.row(name="李梅梅"))[:-2]):
        r = await svc.client.post("/v1/feeds/police/2026-09/batches", content=cut, headers=h)
        assert (r.status_code, r.json()["code"]) == (422, "feed_file_truncated"), (cut[-8:], r.text)
        assert LI.name not in r.text
    assert await _children(svc) == 0


async def test_a_csv_whose_last_cell_may_be_cut_off_is_a_truncated_file(start_service, tokens):
    """A file cut inside its last cell has the right number of cells; what gives it away is the missing
    line break after the last row (every spreadsheet's and the generator's CSV ends its last row with
    one). Without it the last cell is taken as complete only when it cannot have been cut: empty (the
    line ends with the comma before it) or a quoted cell whose closing quote is there (also when its text
    spans a line break). A quoted cell still open at the end of the file is cut off, line break or not."""
    svc = await start_service("registry")
    h = dept_headers(tokens, "dpf") | {"Content-Type": "text/csv"}

    async def post(body: bytes) -> tuple[int, dict]:
        r = await svc.client.post(
            "/v1/feeds/dpf/2026-09/batches", content=body, params={"mode": "validate"}, headers=h
        )
        return r.status_code, r.json()

    first = LI.row(category="残疾", disability="视力残疾", grade="一级")
    last = WANG.row(category="残疾", disability="智力残疾", grade="二级")
    whole = csv_body(first, last)
    for cut in (
        whole[: -len("级\n".encode())],  # 二 of 二级
        whole[:-1],  # 二级 whole, but nothing says so
        csv_body(  # inside a list of categories, the last column here
            *(",".join(r.split(",")[:9]) for r in (first, WANG.row(category="残疾、低"))),
            header=HEADER.rsplit(",", 2)[0],
        ).rstrip(b"\n"),
    ):
        status, body = await post(cut)
        assert (status, body["code"]) == (422, "feed_file_truncated"), cut[-20:].decode()
        assert "line break" in body["detail"] and WANG.name not in json.dumps(body)
    complete = (
        whole,
        whole.replace(b"\n", b"\r\n"),
        csv_body(first, WANG.row(category="残疾")).rstrip(b"\n"),  # the last cell is empty
        whole[:-1].replace("二级".encode(), '"二级"'.encode()),  # the last cell is closed by its quote
        whole[:-1].replace("二级".encode(), '"二\n级"'.encode()),  # closed, its text spanning a line break
        whole + b"  ",  # blanks after the last line break
    )
    for body in complete:
        status, batch = await post(body)
        assert status == 202 and batch["rows_total"] == 2, (body[-20:], batch)
    for open_quote in (
        whole[:-1].replace("二级".encode(), '"二级'.encode()),
        whole.replace("二级\n".encode(), '"二\n'.encode()),  # cut after a line break inside the cell
    ):
        status, body = await post(open_quote)
        assert (status, body["code"]) == (422, "feed_file_truncated"), open_quote[-20:].decode()


async def test_departments_submit_only_their_own_feeds(start_service, tokens):
    svc = await start_service("registry")
    r = await svc.client.post(
        "/v1/feeds/civil/2026-09/batches",
        content=csv_body(WANG.row()),
        headers=dept_headers(tokens, "police") | {"Content-Type": "text/csv"},
    )
    assert (r.status_code, r.json()["code"]) == (403, "feed_department_mismatch")
    r = await svc.client.post(
        "/v1/feeds/police/2026-09/batches",
        content=csv_body(WANG.row()),
        headers=tokens.headers("bureau", BUREAU) | {"Content-Type": "text/csv"},
    )
    assert r.status_code == 403
    batch = await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))
    assert (
        await svc.client.get(f"/v1/feeds/batches/{batch['id']}", headers=dept_headers(tokens, "civil"))
    ).status_code == 404
    assert (
        await svc.client.get(f"/v1/feeds/batches/{batch['id']}", headers=tokens.headers("bureau", BUREAU))
    ).status_code == 200
    listed = (await svc.client.get("/v1/feeds/batches", headers=dept_headers(tokens, "civil"))).json()
    assert listed["items"] == []
    listed = (
        await svc.client.get("/v1/feeds/batches", headers=tokens.headers("inspector", INSPECTOR))
    ).json()
    assert [b["id"] for b in listed["items"]] == [batch["id"]]


async def test_validate_only_applies_nothing_and_same_batch_twice_is_applied_once(start_service, tokens):
    svc = await start_service("registry")
    body = csv_body(WANG.row(), LI.row(), ZHAO.row(name=""))
    dry = await submit(svc, tokens, "police", "2026-09", body, mode="validate")
    assert (dry["status"], dry["accepted"], dry["rejected"]) == ("validated", 2, 1)
    assert await _children(svc) == 0
    first = await submit(svc, tokens, "police", "2026-09", body)
    assert (first["status"], first["children_registered"]) == ("completed", 2)
    again = await submit(svc, tokens, "police", "2026-09", body, expect=200)
    assert again["id"] == first["id"] and again["duplicate"] is True
    assert await _children(svc) == 2
    by_id = await submit(svc, tokens, "police", "2026-09", csv_body(LI.row()), client_batch_id="P-1")
    replay = await submit(
        svc, tokens, "police", "2026-09", csv_body(LI.row()), client_batch_id="P-1", expect=200
    )
    assert replay["id"] == by_id["id"]
    r = await svc.client.post(
        "/v1/feeds/police/2026-09/batches",
        params={"client_batch_id": "P-1"},
        content=csv_body(ZHAO.row()),
        headers=dept_headers(tokens, "police") | {"Content-Type": "text/csv"},
    )
    assert (r.status_code, r.json()["code"]) == (409, "feed_batch_id_reused")
    async with svc.ctx.db.transaction() as s:
        from registry.children.models import ChildAttribute

        names = (
            await s.execute(
                select(func.count()).select_from(ChildAttribute).where(ChildAttribute.attribute == "name")
            )
        ).scalar_one()
    assert names == 2


async def test_error_report_csv_and_excel_with_formulas_neutralised(start_service, tokens):
    svc = await start_service("registry")
    evil = '=HYPERLINK("http://evil.example","x")'
    batch = await submit(
        svc,
        tokens,
        "police",
        "2026-09",
        csv_body(WANG.row(), LI.row(guardian=evil.replace(",", "，")), ZHAO.row(id="123")),
    )
    assert (batch["accepted"], batch["rejected"]) == (2, 1)
    h = dept_headers(tokens, "police")
    r = await svc.client.get(f"/v1/feeds/batches/{batch['id']}/errors", params={"format": "csv"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(lines) == 3  # header + the two rows with reason codes
    by_row = {line[0]: line for line in lines[1:]}
    assert "cell_formula" in by_row["2"][2] and by_row["2"][1] == "rejected"
    assert by_row["2"][4 + 6].startswith("'=")  # 监护人姓名, neutralised
    assert "id_bad_length" in by_row["3"][2] and "身份证号位数错误" in by_row["3"][3]
    assert by_row["3"][4] == ZHAO.name  # the original row
    x = await svc.client.get(f"/v1/feeds/batches/{batch['id']}/errors", params={"format": "xlsx"}, headers=h)
    sheet = load_workbook(io.BytesIO(x.content)).active
    cells = [c.value for c in sheet[2]]
    assert cells[0] == "2" and str(cells[4 + 6]).startswith("'=")
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


async def test_templates_and_calendar(start_service, tokens):
    svc = await start_service("registry")
    clerk = tokens.headers("dept_dpf", "370406D04")
    assert (await svc.client.get("/v1/feeds/templates/dpf")).status_code == 401
    t = await svc.client.get("/v1/feeds/templates/dpf", params={"format": "xlsx"}, headers=clerk)
    book = load_workbook(io.BytesIO(t.content))
    assert [c.value for c in book.worksheets[0][1]] == HEADER.split(",")
    assert any(c.value == "智力残疾" for row in book.worksheets[1].iter_rows() for c in row)
    c = await svc.client.get("/v1/feeds/templates/civil", params={"format": "csv"}, headers=clerk)
    assert c.content.decode("utf-8-sig").strip() == HEADER
    assert (await svc.client.get("/v1/feeds/templates/nobody", headers=clerk)).status_code == 404
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), ZHAO.row(name="")))
    cal = (
        await svc.client.get(
            "/v1/feeds/calendar", params={"year": 2026}, headers=tokens.headers("bureau", BUREAU)
        )
    ).json()
    assert len(cal) == 8
    police = next(e for e in cal if e["department"] == "police" and e["period"] == "2026-09")
    assert (
        police["delivered"] and (police["accepted"], police["rejected"]) == (1, 1) and not police["overdue"]
    )
    civil = next(e for e in cal if e["department"] == "civil" and e["period"] == "2026-09")
    assert (
        civil["due"] == "2026-09-30" and not civil["delivered"] and civil["overdue"]
    )  # today is after the due date


async def test_an_excel_id_number_stored_as_a_number_is_rejected_and_the_template_keeps_it_text(
    start_service, tokens
):
    """Excel keeps a number to 15 significant digits: an 18-digit ID number typed into a General column
    comes back with its last digits changed (and sometimes a check character that still fits). Such a
    cell rejects its row with its own reason, and the template formats 身份证号 and 监护人电话 as text
    so that Excel keeps what the clerk types."""
    svc = await start_service("registry")
    rounded = float(f"{float(LI.id):.14e}")  # what Excel stores for LI's ID number
    assert str(int(rounded)) != LI.id
    body = _xlsx([WANG.row().split(","), [LI.name, rounded, *LI.row().split(",")[2:]]])
    batch = await submit(svc, tokens, "police", "2026-09", body, content_type=XLSX)
    assert (batch["accepted"], batch["rejected"]) == (1, 1)
    h = dept_headers(tokens, "police")
    r = await svc.client.get(f"/v1/feeds/batches/{batch['id']}/errors", params={"format": "csv"}, headers=h)
    [line] = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))[1:]
    assert (line[0], line[1], line[2]) == ("2", "rejected", "id_number_stored_as_number")
    assert "文本" in line[3]
    assert await _children(svc) == 1
    t = await svc.client.get("/v1/feeds/templates/police", params={"format": "xlsx"}, headers=h)
    sheet = load_workbook(io.BytesIO(t.content)).worksheets[0]
    formats = {c.value: sheet.column_dimensions[c.column_letter].number_format for c in sheet[1]}
    assert formats["身份证号"] == formats["监护人电话"] == "@"
    assert formats["姓名"] == "General"


async def test_openapi_documents_the_feed_body_and_every_ref_resolves(start_service):
    svc = await start_service("registry")
    doc = (await svc.client.get("/openapi.json")).json()
    body = doc["paths"]["/v1/feeds/{department}/{period}/batches"]["post"]["requestBody"]["content"]
    assert {"application/x-ndjson", "application/json", "text/csv"} <= set(body)
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in doc["components"]["schemas"], ref


def _with_sheet_cut(book: bytes) -> bytes:
    """The workbook rewritten with the first sheet's XML cut off halfway: a valid zip around a broken sheet."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(book)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    return out.getvalue()


async def test_an_excel_file_whose_sheet_is_cut_off_is_a_truncated_file_problem(start_service, tokens):
    svc = await start_service("registry")
    body = _with_sheet_cut(_xlsx([kid.row().split(",") for kid in (WANG, LI, ZHAO)] * 20))
    r = await svc.client.post(
        "/v1/feeds/police/2026-09/batches",
        content=body,
        headers=dept_headers(tokens, "police") | {"Content-Type": XLSX},
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "feed_file_truncated"
    assert await _children(svc) == 0


async def test_a_formula_in_an_excel_cell_rejects_its_row_whatever_value_it_cached(start_service, tokens):
    """A cell holding a formula is ``cell_formula`` (rejected) although the workbook stores it as a formula
    with a cached value (or none), not as text starting with ``=``; the report shows the formula."""
    svc = await start_service("registry")
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    sheet.append(WANG.row().split(","))
    sheet.append(LI.row().split(","))
    sheet.append(ZHAO.row().split(","))
    sheet["F2"] = '=HYPERLINK("http://evil.example","渠庄村5号")'  # 现住址 of the first row
    sheet["G3"] = ArrayFormula("G3", '=CONCAT("李","强")')  # 监护人姓名 of the second row
    out = io.BytesIO()
    book.save(out)
    batch = await submit(svc, tokens, "police", "2026-09", out.getvalue(), content_type=XLSX)
    assert (batch["accepted"], batch["rejected"]) == (1, 2)
    r = await svc.client.get(
        f"/v1/feeds/batches/{batch['id']}/errors",
        params={"format": "csv"},
        headers=dept_headers(tokens, "police"),
    )
    by_row = {line[0]: line for line in list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))[1:]}
    assert set(by_row) == {"1", "2"}
    assert all("cell_formula" in line[2] and line[1] == "rejected" for line in by_row.values())
    assert by_row["1"][4 + 5].startswith("'=HYPERLINK(")  # the formula, neutralised


async def test_the_calendar_counts_every_committed_batch_of_the_period(start_service, tokens):
    """A department that delivers a period in two batches: the calendar adds up both batches' rows and
    shows when the last one arrived; a dry run counts for nothing."""
    svc = await start_service("registry")
    first = await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), ZHAO.row(name="")))
    await submit(svc, tokens, "police", "2026-09", csv_body(ZHAO.row()), mode="validate")
    second = await submit(svc, tokens, "police", "2026-09", csv_body(LI.row(), ZHAO.row(), LI.row(name="")))
    assert (second["accepted"], second["rejected"]) == (2, 1)
    cal = (
        await svc.client.get(
            "/v1/feeds/calendar", params={"year": 2026}, headers=tokens.headers("bureau", BUREAU)
        )
    ).json()
    police = next(e for e in cal if e["department"] == "police" and e["period"] == "2026-09")
    assert (police["accepted"], police["rejected"], police["batches"]) == (3, 2, 2)
    assert police["batch_id"] == second["id"] and police["delivered_at"] == second["completed_at"]
    assert police["first_delivered_at"] == first["completed_at"]


async def test_the_same_rows_as_other_bytes_are_the_same_batch_and_the_calendar_counts_children(
    start_service, tokens
):
    """A batch is recognised by its rows, not its bytes: the same rows with CRLF line breaks, a BOM, in GBK,
    in another order or column order, as re-serialised JSON or NDJSON, or as an Excel file saved again are
    a repeat (200, the first batch, nothing applied again). A period delivered in overlapping batches
    counts each child once in the calendar."""
    svc = await start_service("registry")
    body = csv_body(WANG.row(), LI.row(), ZHAO.row(name=""))
    first = await submit(svc, tokens, "police", "2026-09", body)
    assert (first["accepted"], first["rejected"]) == (2, 1)
    header = HEADER.split(",")
    order = [4, 0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    reordered = "\n".join(
        ",".join(r.split(",")[i] for i in order) for r in (HEADER, ZHAO.row(name=""), LI.row(), WANG.row())
    )
    repeats = [
        body.replace(b"\n", b"\r\n"),
        b"\xef\xbb\xbf" + body,
        csv_body(WANG.row(), LI.row(), ZHAO.row(name=""), encoding="gbk"),
        (reordered + "\n").encode(),
        body.replace(WANG.name.encode(), f'"{WANG.name}"'.encode()),  # quoted where no quote is needed
    ]
    for again in repeats:
        batch = await submit(svc, tokens, "police", "2026-09", again, expect=200)
        assert (batch["id"], batch["duplicate"]) == (first["id"], True), again[:40]
    replay = await submit(svc, tokens, "police", "2026-09", csv_body(LI.row()), client_batch_id="P-9")
    same_id = await submit(
        svc,
        tokens,
        "police",
        "2026-09",
        csv_body(LI.row()).replace(b"\n", b"\r\n"),
        client_batch_id="P-9",
        expect=200,
    )
    assert same_id["id"] == replay["id"]  # the same rows under the same client batch id: no 409

    rows = [dict(zip(header, r.split(","), strict=True)) for r in (WANG.row(), LI.row())]
    js = await submit(
        svc, tokens, "civil", "2026-09", json.dumps({"rows": rows}).encode(), content_type="application/json"
    )
    as_ndjson = "".join(json.dumps(dict(reversed(r.items())), ensure_ascii=False) + "\n" for r in rows[::-1])
    again = await submit(
        svc, tokens, "civil", "2026-09", as_ndjson.encode(), content_type="application/x-ndjson", expect=200
    )
    assert again["id"] == js["id"]
    spaced = json.dumps({"note": "re-sent", "rows": rows}, indent=2, ensure_ascii=False).encode()
    assert (
        await submit(svc, tokens, "civil", "2026-09", spaced, content_type="application/json", expect=200)
    )["id"] == js["id"]

    book = _xlsx([r.split(",") for r in (WANG.row(category="建档立卡"), LI.row(category="建档立卡"))])
    x = await submit(svc, tokens, "poverty", "2026-09", book, content_type=XLSX)
    other = Workbook()
    other.active.title = "导出"
    other.active.append(header)
    for r in (LI.row(category="建档立卡"), WANG.row(category="建档立卡")):
        other.active.append(r.split(","))
    out = io.BytesIO()
    other.save(out)
    assert out.getvalue() != book
    assert (await submit(svc, tokens, "poverty", "2026-09", out.getvalue(), content_type=XLSX, expect=200))[
        "id"
    ] == x["id"]

    # An overlapping delivery is a new batch (ZHAO is new) and is applied; the calendar counts children.
    overlap = await submit(
        svc, tokens, "police", "2026-09", csv_body(LI.row(), ZHAO.row(), WANG.row(name=""))
    )
    assert (overlap["accepted"], overlap["rejected"]) == (2, 1)
    cal = (
        await svc.client.get(
            "/v1/feeds/calendar", params={"year": 2026}, headers=tokens.headers("bureau", BUREAU)
        )
    ).json()
    police = next(e for e in cal if e["department"] == "police" and e["period"] == "2026-09")
    # Batches: first (WANG, LI; ZHAO rejected), P-9 (LI), overlap (LI, ZHAO; WANG rejected): summed, 5 and 2.
    assert (police["batches"], police["accepted"], police["rejected"]) == (3, 3, 2)
    civil = next(e for e in cal if e["department"] == "civil" and e["period"] == "2026-09")
    assert (civil["batches"], civil["accepted"], civil["rejected"]) == (1, 2, 0)


async def test_a_cell_no_database_takes_rejects_its_row_and_never_the_batch(start_service, tokens):
    """A NUL in a CSV cell (PostgreSQL refuses it in text) and an unpaired surrogate in NDJSON (no UTF-8
    store takes it) reject their rows with a reason code; the other rows are applied, and the error
    report, CSV and Excel, shows the row with the bad characters replaced."""
    svc = await start_service("registry")
    h = dept_headers(tokens, "police")
    batch = await submit(
        svc, tokens, "police", "2026-09", csv_body(WANG.row(current="渠庄村\x005号"), LI.row())
    )
    assert (batch["status"], batch["accepted"], batch["rejected"]) == ("completed", 1, 1)
    fields = ("name", "id_number", "sex", "birth_date", "hukou_address", "current_address")
    ndjson = (
        json.dumps(dict(zip(fields, ZHAO.row(current="府前\ud800社区").split(",")[:6], strict=True))).encode()
        + b"\n"
        + json.dumps(dict(zip(fields, WANG.row().split(",")[:6], strict=True))).encode()
        + b"\n"
    )
    assert b"\\ud800" in ndjson
    second = await submit(svc, tokens, "police", "2026-09", ndjson, content_type="application/x-ndjson")
    assert (second["status"], second["accepted"], second["rejected"]) == ("completed", 1, 1)
    assert await _children(svc) == 2  # LI, WANG
    for done, code, shown in (
        (batch, "cell_control_character", "渠庄村\ufffd5号"),
        (second, "cell_invalid_text", "府前\ufffd社区"),
    ):
        url = f"/v1/feeds/batches/{done['id']}/errors"
        r = await svc.client.get(url, params={"format": "csv"}, headers=h)
        assert r.status_code == 200, r.text
        lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))[1:]
        [line] = [line for line in lines if line[1] == "rejected"]
        assert code in line[2].split(",") and line[4 + 5] == shown
        x = await svc.client.get(url, params={"format": "xlsx"}, headers=h)
        sheet = load_workbook(io.BytesIO(x.content)).active
        assert x.status_code == 200 and shown in [c.value for c in sheet["J"]]
