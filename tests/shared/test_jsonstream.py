"""Streaming the items of one array of a JSON document: the same values as json.load, every error found."""

from __future__ import annotations

import io
import json

import pytest

from baoxue.jsonstream import JsonStreamError, iter_array

DOCS = [
    {"rows": []},
    {"rows": [{"姓名": "王小明", "n": 1}, {"name": "李梅\U0001f600", "x": [1, 2.5e3, None, True]}]},
    {"meta": {"batch": "P-1", "list": [1, 2, {"a": "]}"}]}, "rows": [{"q": '"\\,]}'}], "after": -0.5},
    {"rows": [12, -3.25e-2, "text", None, False, [], {}], "rows2": [1]},
]


@pytest.mark.parametrize("doc", DOCS)
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 16])
@pytest.mark.parametrize("indent", [None, 2])
def test_items_are_json_loads_items_at_every_chunk_boundary(doc, chunk, indent):
    text = json.dumps(doc, ensure_ascii=indent is None, indent=indent)
    for body in (text.encode(), b"\xef\xbb\xbf" + text.encode()):  # with and without a BOM
        assert list(iter_array(io.BytesIO(body), "rows", max_item_chars=1000, chunk=chunk)) == doc["rows"]


def _kind(body: bytes, chunk: int = 4, limit: int = 1000) -> str:
    with pytest.raises(JsonStreamError) as raised:
        list(iter_array(io.BytesIO(body), "rows", max_item_chars=limit, chunk=chunk))
    return raised.value.kind


def test_every_proper_prefix_of_a_document_is_an_error():
    body = json.dumps(DOCS[2], ensure_ascii=False).encode()
    for cut in range(len(body)):
        if body[:cut].strip():
            assert _kind(body[:cut]) in ("truncated", "invalid", "encoding"), cut


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"rows": [1 2]}', "invalid"),
        (b'{"rows": [1], }', "invalid"),
        (b'{"rows": [1]} x', "invalid"),
        (b'{"rows": [{"a": tru}]}', "invalid"),
        (b"{rows: []}", "invalid"),
        (b'{"rows": [{"a": "\xff"}]}', "encoding"),
        (b'[{"a": 1}]', "no_array"),
        (b'{"other": []}', "no_array"),
        (b'{"rows": {"a": 1}}', "no_array"),
        (b"{}", "no_array"),
        (b'{"rows": [{"a": "' + b"x" * 5000 + b'"}]}', "item_too_large"),
    ],
)
def test_documents_that_are_not_a_batch(body, kind):
    assert _kind(body) == kind


def test_an_item_too_large_is_found_without_holding_it_and_says_how_many_came_before():
    body = b'{"rows": [{"a": 1}, {"b": 2}, {"c": "' + b"x" * 10_000_000 + b'"}]}'
    source = io.BytesIO(body)
    items = iter_array(source, "rows", max_item_chars=16_384, chunk=1 << 16)
    assert [next(items), next(items)] == [{"a": 1}, {"b": 2}]
    with pytest.raises(JsonStreamError) as raised:
        next(items)
    assert (raised.value.kind, raised.value.item) == ("item_too_large", 2)
    assert source.tell() < 200_000  # gave up after the limit, not at the end of the value


def test_the_file_is_read_as_the_items_are_taken():
    rows = [{"name": f"孩子{i}", "n": i} for i in range(20_000)]
    source = io.BytesIO(json.dumps({"rows": rows}, ensure_ascii=False).encode())
    items = iter_array(source, "rows", max_item_chars=1000, chunk=1 << 12)
    assert next(items) == rows[0]
    assert source.tell() <= 1 << 12
    assert list(items) == rows[1:]
