"""Formula injection in exported spreadsheets: every cell a spreadsheet would evaluate is neutralised."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from openpyxl import Workbook, load_workbook

from baoxue.spreadsheets import neutralise, neutralise_row, neutralise_text, to_csv

HOSTILE = [
    '=HYPERLINK("http://evil.example","点我")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_text_a_spreadsheet_would_evaluate_gets_an_apostrophe(value):
    assert neutralise(value) == "'" + value
    assert neutralise_text(value) == "'" + value


@pytest.mark.parametrize("value", ["山城街道", "a=b", "1+1", " =x", "", "'=already"])
def test_harmless_text_is_unchanged(value):
    assert neutralise(value) == value


def test_numbers_dates_and_none():
    day = dt.date(2026, 11, 30)
    assert neutralise_row([-3, 0.25, True, day, None]) == [-3, 0.25, True, day, ""]
    assert neutralise_text(-3) == "'-3" and neutralise_text(None) == "" and neutralise_text(7) == "7"


def test_csv_cells_come_out_neutralised_and_excel_reads_no_formula():
    data = to_csv([["学校", "覆盖率"], [HOSTILE[0], 0.5], ["-1", -1], [None, None]])
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 with the byte order mark
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [["学校", "覆盖率"], ["'" + HOSTILE[0], "0.5"], ["'-1", "-1"], ["", ""]]

    book = Workbook()
    sheet = book.active
    for value in HOSTILE:
        sheet.append(neutralise_row([value, 1]))
    out = io.BytesIO()
    book.save(out)
    cells = [c for row in load_workbook(io.BytesIO(out.getvalue())).active.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    # (XML reads a carriage return back as a line feed)
    assert [c.value for c in cells[::2]] == ["'" + v.replace("\r", "\n") for v in HOSTILE]
