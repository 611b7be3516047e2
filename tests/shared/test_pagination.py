"""baoxue.pagination: a cursor decodes to the list's key of the shape it declares, or to a 400 problem."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from baoxue.errors import Problem
from baoxue.pagination import decode_cursor, encode_cursor, page_of

DAY = dt.date(2026, 11, 20)
AT = dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.UTC)


def _raw(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_the_keys_page_of_writes_come_back_typed() -> None:
    page = page_of([1, 2, 3], 2, lambda n: n)
    assert decode_cursor(page.next_cursor, int) == 2
    assert decode_cursor(encode_cursor("c-9"), str) == "c-9"
    assert decode_cursor(encode_cursor([DAY.isoformat(), "c-9"]), (dt.date, str)) == (DAY, "c-9")
    assert decode_cursor(encode_cursor([AT.isoformat(), "m-1"]), (dt.datetime, str)) == (AT, "m-1")
    assert decode_cursor(encode_cursor(["37040600101001", "stu-1"]), (str, str)) == (
        "37040600101001",
        "stu-1",
    )
    assert decode_cursor(None, int) is None and decode_cursor("", (dt.date, str)) is None


@pytest.mark.parametrize(
    ("cursor", "shape"),
    [
        ("!!", int),  # not base64 JSON
        (_raw([1, 2]), int),  # JSON, but not our wrapping
        (_raw(5), (dt.date, str)),  # a bare integer
        (encode_cursor(5), (dt.date, str)),  # our wrapping around a bare integer
        (encode_cursor(5), str),
        (encode_cursor("5"), int),  # wrong types
        (encode_cursor(True), int),
        (encode_cursor(2**63), int),  # beyond a 64-bit column
        (encode_cursor(1.5), int),
        (encode_cursor({"a": 1}), str),
        (encode_cursor(["a", "b"]), str),
        (encode_cursor("a\x00b"), str),  # a NUL the database refuses
        (encode_cursor([1, "c-1"]), (dt.date, str)),
        (encode_cursor(["2026-13-01", "c-1"]), (dt.date, str)),
        (encode_cursor(["2026-11-20", 7]), (dt.date, str)),
        (encode_cursor(["2026-11-20"]), (dt.date, str)),  # wrong length
        (encode_cursor(["2026-11-20", "c-1", "x"]), (dt.date, str)),
        (encode_cursor([AT.isoformat(), "c-1"]), (dt.date, str)),  # a time where a date is expected
        (encode_cursor(["2026-11-20T08:30:00", "m-1"]), (dt.datetime, str)),  # a time without its offset
        (encode_cursor(["37040600101001", "stu-1"]), (dt.date, str)),  # another list's key
        (encode_cursor(["2026-11-20", "c-1"]), int),
    ],
)
def test_anything_else_is_a_400_invalid_cursor(cursor: str, shape: Any) -> None:
    with pytest.raises(Problem) as raised:
        decode_cursor(cursor, shape)
    assert (raised.value.status, raised.value.code) == (400, "invalid_cursor")
