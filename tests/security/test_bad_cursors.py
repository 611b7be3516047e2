"""Every list of every service, discovered from its OpenAPI, answers a cursor it did not make for that
list with 400 invalid_cursor (or, for one that happens to have the list's key shape, a page): never a
server error. The cursor's key is checked where it is decoded (``baoxue.pagination.decode_cursor``)."""

from __future__ import annotations

import httpx
import pytest

from baoxue.auth.roles import ROLES
from baoxue.pagination import encode_cursor
from baoxue.testing.attacks import ROLE_ORGS, discover_operations, is_problem

from .conftest import SERVICES

# No list's key has these shapes: a float, an object, a pair of a date and a number, a null, three
# parts, a NUL character.
NEVER_A_KEY = [
    encode_cursor(1.5),
    encode_cursor({"a": 1}),
    encode_cursor(["2026-11-20", 7]),
    encode_cursor([None, "x"]),
    encode_cursor(["x", "y", "z"]),
    encode_cursor("a\x00b"),
]
# Some list's key has one of these shapes (an id, a number, a date or a time with an id): a page or a 400.
SOME_KEY = [
    encode_cursor(5),
    encode_cursor("abc"),
    encode_cursor(["2026-11-20", "x"]),
    encode_cursor(["2026-11-20T08:00:00+00:00", "x"]),
    encode_cursor(["37040600101001", "stu-1"]),
]
REQUIRED = {"semester": "2026-autumn", "year": "2026", "period": "2026-09"}


@pytest.mark.parametrize("name", SERVICES)
async def test_every_list_refuses_cursors_of_another_shape(start_service, tokens, name):
    svc = await start_service(name)
    doc = svc.app.openapi()
    lists = []
    for op in discover_operations(name, doc):
        params = doc["paths"][op.path]["get"].get("parameters", []) if op.method == "GET" else []
        if op.is_collection_read and any(p["name"] == "cursor" for p in params):
            required = {p["name"]: REQUIRED[p["name"]] for p in params if p.get("required")}
            lists.append((op.path, required))
    assert lists
    transport = httpx.ASGITransport(app=svc.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
        for path, required in lists:
            for role in ROLES:
                headers = tokens.headers(role, ROLE_ORGS[role], purpose="cursor check")
                if (await client.get(path, params=required, headers=headers)).status_code == 200:
                    break
            else:
                pytest.fail(f"{name} {path}: no role may read it")
            for cursor in [*NEVER_A_KEY, *SOME_KEY]:
                r = await client.get(path, params={**required, "cursor": cursor}, headers=headers)
                label = (name, path, role, cursor)
                if cursor in NEVER_A_KEY or r.status_code != 200:
                    assert r.status_code == 400 and is_problem(r), (label, r.status_code, r.text[:200])
                    assert r.json()["code"] == "invalid_cursor", label
