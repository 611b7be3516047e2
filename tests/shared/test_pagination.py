"""baoxue.pagination: a cursor decodes to the list's key of the shape it declares, or to a 400 problem; in a
request, only on the list (service, path, filters) that issued it."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from baoxue.errors import Problem, install_problem_handlers
from baoxue.pagination import (
    SERVICE_NAME_STATE,
    Cursor,
    Limit,
    Page,
    bound_to,
    decode_cursor,
    encode_cursor,
    list_tag,
    page_of,
)

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


# ---- a cursor is bound to the list that issued it ----------------------------------------------------

ROWS = list(range(1, 11))


def _lang(lang: str = "zh") -> str:
    """A query parameter a dependency declares (a filter as much as the endpoint's own)."""
    return lang


def _app(service: str = "casework") -> FastAPI:
    """Three lists with keys of the same type (int), named as the app factory names a service's."""
    app = FastAPI()
    install_problem_handlers(app)
    setattr(app.state, SERVICE_NAME_STATE, service)

    def page(after: int | None, limit: int, odd: bool | None) -> Page[int]:
        rows = [n for n in ROWS if (after is None or n > after) and (odd is None or n % 2 == odd)]
        return page_of(rows[: limit + 1], limit, lambda n: n)

    @app.get("/things")
    async def things(
        lang: Annotated[str, Depends(_lang)], limit: Limit = 3, cursor: Cursor = None, odd: bool | None = None
    ) -> Page[int]:
        return page(decode_cursor(cursor, int), limit, odd)

    @app.get("/other-things")
    async def other_things(limit: Limit = 3, cursor: Cursor = None) -> Page[int]:
        return page(decode_cursor(cursor, int), limit, None)

    @app.get("/boxes/{box}/things")
    async def box_things(box: str, limit: Limit = 3, cursor: Cursor = None) -> Page[int]:
        return page(decode_cursor(cursor, int), limit, None)

    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def _cursor_of(client: httpx.AsyncClient, path: str, **params: Any) -> str:
    r = await client.get(path, params={"limit": 2, **params})
    assert r.status_code == 200 and r.json()["next_cursor"], r.text
    return str(r.json()["next_cursor"])


def _refused(r: httpx.Response) -> bool:
    return r.status_code == 400 and r.json()["code"] == "invalid_cursor"


async def test_a_list_pages_with_its_own_cursors_whatever_the_page_size() -> None:
    async with _client(_app()) as client:
        seen, cursor, sizes = [], None, iter([3, 1, 4, 2, 5])
        while True:
            # The page size changes and a parameter no route declares comes and goes: the same list.
            extra = {"_": str(len(seen))} if seen else {}
            params = {"limit": next(sizes), "odd": "true", **extra, **({"cursor": cursor} if cursor else {})}
            r = await client.get("/things", params=params)
            assert r.status_code == 200, r.text
            seen += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        assert seen == [1, 3, 5, 7, 9]
        for path in ("/other-things", "/boxes/b-1/things"):
            cursor = await _cursor_of(client, path)
            assert (await client.get(path, params={"cursor": cursor})).json()["items"] == [3, 4, 5]


async def test_a_cursor_of_another_list_with_the_same_key_type_is_refused() -> None:
    async with _client(_app()) as client:
        things = await _cursor_of(client, "/things")
        assert _refused(await client.get("/other-things", params={"cursor": things}))
        assert _refused(await client.get("/boxes/b-1/things", params={"cursor": things}))
        # The same route for another object: case X's list is not case Y's.
        box = await _cursor_of(client, "/boxes/b-1/things")
        assert _refused(await client.get("/boxes/b-2/things", params={"cursor": box}))
        assert (await client.get("/boxes/b-1/things", params={"cursor": box})).status_code == 200
    # The same path in another service.
    async with _client(_app("notify")) as client:
        assert _refused(await client.get("/things", params={"cursor": things}))


async def test_a_cursor_is_bound_to_its_filters_as_sent_in_any_order() -> None:
    async with _client(_app()) as client:
        cursor = await _cursor_of(client, "/things", odd="true", lang="en")
        ok = await client.get(f"/things?lang=en&cursor={cursor}&odd=true")
        assert ok.status_code == 200 and ok.json()["items"] == [5, 7, 9]
        for other in (
            {"odd": "false", "lang": "en"},
            {"lang": "en"},
            {"odd": "true"},
            {"odd": "1", "lang": "en"},
        ):
            assert _refused(await client.get("/things", params={**other, "cursor": cursor})), other


async def test_a_cursor_without_a_tag_is_refused_in_a_request_and_read_outside() -> None:
    untagged = encode_cursor(2)  # outside a request: what cursors were before they were bound
    assert json.loads(base64.urlsafe_b64decode(untagged + "=" * (-len(untagged) % 4))) == {"baoxue_cursor": 2}
    async with _client(_app()) as client:
        assert _refused(await client.get("/things", params={"cursor": untagged}))
        tagged = await _cursor_of(client, "/things")
    assert decode_cursor(tagged, int) == 2  # outside a request no tag is checked


async def test_the_shape_is_checked_before_the_list() -> None:
    scope = {"type": "http", "method": "GET", "path": "/things", "query_string": b""}
    with bound_to("casework", scope):
        wrong_shape = encode_cursor("c-1")
        assert decode_cursor(encode_cursor(4), int) == 4
    with bound_to("casework", scope), pytest.raises(Problem) as raised:
        decode_cursor(wrong_shape, int)
    assert raised.value.code == "invalid_cursor"


def test_the_tag_is_short_opaque_and_routed() -> None:
    scope = {"type": "http", "method": "GET", "path": "/v1/cases/c-42/persuasions", "query_string": b"a=1"}
    with bound_to("casework", scope):
        cursor = encode_cursor(7)
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert set(payload) == {"baoxue_cursor", "of"} and len(payload["of"]) == 12
    assert "c-42" not in json.dumps(payload) and "persuasions" not in json.dumps(payload)
    tag = list_tag("casework", scope)
    assert payload["of"] == tag
    # The path the routes see, whether or not the server left the root path in it.
    assert (
        list_tag(
            "casework", {**scope, "path": "/casework/v1/cases/c-42/persuasions", "root_path": "/casework"}
        )
        == tag
    )
    assert list_tag("casework", {**scope, "root_path": "/casework"}) == tag
    # Paging parameters and the order of the filters do not change it; the rest does.
    assert list_tag("casework", {**scope, "query_string": b"limit=5&a=1&cursor=x"}) == tag
    for other in (
        {"query_string": b"a=2"},
        {"query_string": b""},
        {"path": "/v1/cases/c-43/persuasions"},
        {"method": "POST"},
    ):
        assert list_tag("casework", {**scope, **other}) != tag, other
    assert list_tag("notify", scope) != tag
