"""Text every store takes: control characters and unpaired surrogates are found and replaced."""

from __future__ import annotations

import io
import json

import pytest
from openpyxl import Workbook

from baoxue.text import REPLACEMENT, storable, unstorable


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("山城街道府前社区3号楼", set()),
        ("line one\nline two\ttabbed\r", set()),  # the whitespace controls are text
        ("渠庄村\x005号", {"control_character"}),
        ("\x1b[31m", {"control_character"}),
        ("\x7f\x85", {"control_character"}),
        ("王\ud800明", {"invalid_text"}),
        ("\udfff\x00", {"control_character", "invalid_text"}),
        ("😀 and 𠀀", set()),  # characters beyond the BMP are one code point each, not surrogates
    ],
)
def test_unstorable_names_what_a_store_would_refuse(value, found):
    assert unstorable(value) == found


def test_storable_text_is_taken_by_utf_8_json_and_an_xlsx_sheet():
    value = "渠庄村\x00\x01\x0b5号\ud800\udfff 😀\n"
    kept = storable(value)
    assert kept == f"渠庄村{REPLACEMENT * 3}5号{REPLACEMENT * 2} 😀\n"
    assert unstorable(kept) == set()
    kept.encode("utf-8")
    json.dumps(kept, ensure_ascii=False).encode("utf-8")
    book = Workbook()
    book.active.append([kept])  # openpyxl refuses C0 controls
    book.save(io.BytesIO())
    assert storable("plain") == "plain"
