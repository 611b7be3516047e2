"""Every list of every service, discovered from its OpenAPI, answers a cursor it did not make for that
list with 400 invalid_cursor: one of a key of another shape, one another list issued for a key of this
list's shape (another path, another object's list, another service's list of the same path), one
without the tag of its list (made before cursors were bound) — never a server error, never a page. Its
own cursors page. The key is checked where the cursor is decoded (``baoxue.pagination.decode_cursor``),
and the list there too (the tag ``page_of`` wrote in the request that issued it)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from baoxue.auth.roles import ROLES
from baoxue.pagination import bound_to, encode_cursor
from baoxue.testing.attacks import ROLE_ORGS, discover_operations, is_problem
from tests.casework.helpers import case_in, open_case

from .conftest import FIGURES, SERVICES
from .seeds import SEEDS, SeedContext

# No list's key has these shapes: a float, an object, a pair of a date and a number, a null, three
# parts, a NUL character.
NEVER_A_KEY = [1.5, {"a": 1}, ["2026-11-20", 7], [None, "x"], ["x", "y", "z"], "a\x00b"]
# Some list's key has one of these shapes (a number, an id, a date or a time with an id, two codes):
# every list pages with at least one of them.
SOME_KEY = [
    5,
    "abc",
    ["2026-11-20", "x"],
    ["2026-11-20T08:00:00+00:00", "x"],
    ["37040600101001", "stu-1"],
]
REQUIRED = {"semester": "2026-autumn", "year": "2026", "period": "2026-09"}


class _Recorder:
    """The app, remembering the scope of its last HTTP request (routed by the time it answered)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.scope: Scope | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.scope = scope
        await self.app(scope, receive, send)


def _issued(service: str, scope: Scope, key: Any) -> str:
    """The cursor of ``key`` as the list of the request ``scope`` in ``service`` hands it out."""
    with bound_to(service, scope):
        return encode_cursor(key)


async def _path_values(svc: Any, tokens: Any, name: str, params: tuple[str, ...]) -> list[dict[str, str]]:
    """Two objects for a list under a path parameter (case X's persuasions and case Y's), from the seeds
    of the authorisation matrix, in the school of ``ROLE_ORGS``."""
    if not params:
        return [{}]
    [param] = params
    [seed] = [s for s in SEEDS if (s.service, s.param) == (name, param)]
    school, town = ROLE_ORGS["school"], ROLE_ORGS["town"]
    values = []
    for _ in range(2):
        if seed.create is not None:
            values.append({param: await seed.create(SeedContext(svc, tokens, None), school, town)})
            continue
        body = seed.body(school, town)
        r = await svc.client.post(seed.path, json=body, headers=tokens.headers(seed.role, school))
        assert r.status_code in (200, 201), (seed.path, r.status_code, r.text[:300])
        values.append({param: str(r.json()[seed.id_field])})
    return values


@pytest.mark.parametrize("name", SERVICES)
async def test_every_list_refuses_cursors_it_did_not_issue(start_service, tokens, name):
    svc = await start_service(name)
    doc = svc.app.openapi()
    recorder = _Recorder(svc.app)
    transport = httpx.ASGITransport(app=recorder, raise_app_exceptions=False)
    # Every list (a GET with a cursor), once per object for a list under a path parameter: its URL, the
    # query it needs, the headers of a role that reads it and the scope of that request.
    lists: list[tuple[str, dict[str, str], dict[str, str], Scope]] = []
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
        for op in discover_operations(name, doc):
            params = doc["paths"][op.path]["get"].get("parameters", []) if op.method == "GET" else []
            if not any(p["name"] == "cursor" and p["in"] == "query" for p in params):
                continue
            required = {
                p["name"]: REQUIRED[p["name"]] for p in params if p.get("required") and p["in"] == "query"
            }
            for values in await _path_values(svc, tokens, name, op.path_params):
                url = op.url(values)
                for role in ROLES:
                    headers = tokens.headers(role, ROLE_ORGS[role], purpose="cursor check")
                    if (await client.get(url, params=required, headers=headers)).status_code == 200:
                        break
                else:
                    pytest.fail(f"{name} {url}: no role may read it")
                assert recorder.scope is not None and recorder.scope["path"] == url
                lists.append((url, required, headers, recorder.scope))
        assert lists
        tried = 0

        async def refused(url: str, required: dict[str, str], headers: dict[str, str], cursor: str) -> Any:
            nonlocal tried
            tried += 1
            r = await client.get(url, params={**required, "cursor": cursor}, headers=headers)
            return r.status_code == 400 and is_problem(r) and r.json()["code"] == "invalid_cursor", r

        for url, required, headers, scope in lists:
            for key in NEVER_A_KEY:
                ok, r = await refused(url, required, headers, _issued(name, scope, key))
                assert ok, (name, url, key, r.status_code, r.text[:200])
            own = []
            for key in SOME_KEY:
                ok, r = await refused(url, required, headers, _issued(name, scope, key))
                if not ok:
                    assert r.status_code == 200, (name, url, key, r.status_code, r.text[:200])
                    own.append(key)
            assert own, f"{name} {url}: pages with none of its own cursors {SOME_KEY}"
            for key in own:
                # The same key issued by every other list, by the same list in another service, or
                # before cursors were bound (no tag).
                strangers = [_issued(name, other, key) for *_, other in lists if other is not scope]
                strangers += [_issued(service, scope, key) for service in SERVICES if service != name]
                strangers.append(encode_cursor(key))
                for cursor in strangers:
                    ok, r = await refused(url, required, headers, cursor)
                    assert ok, (name, url, key, r.status_code, r.text[:200])
    FIGURES[f"cursors: {name}: lists"] += len(lists)
    FIGURES[f"cursors: {name}: cursors tried"] += tried


async def test_real_cursors_page_their_own_list_only(start_service, tokens):
    """Cursors as casework hands them out: another list's with the same key type (the cases and the
    ledger of suspected cases, both (opened_on, id)), another case's persuasion log's, the same list's
    under another filter are refused; the list's own pages on, whatever the page size."""
    svc = await start_service("casework")
    school = tokens.headers("school", ROLE_ORGS["school"])
    teacher = tokens.headers("teacher", ROLE_ORGS["teacher"])
    for _ in range(3):
        await open_case(svc, school)

    async def get(path: str, **params: Any) -> httpx.Response:
        return await svc.client.get(path, params=params, headers=school)

    def refused(r: httpx.Response) -> bool:
        return r.status_code == 400 and r.json()["code"] == "invalid_cursor"

    cases = (await get("/v1/cases", limit=1)).json()["next_cursor"]
    suspected = (await get("/v1/cases/ledgers/suspected", limit=1)).json()["next_cursor"]
    filtered = (await get("/v1/cases", limit=1, state="suspected")).json()["next_cursor"]
    assert cases and suspected and filtered
    assert refused(await get("/v1/cases/ledgers/suspected", cursor=cases))
    assert refused(await get("/v1/cases", cursor=suspected))
    assert refused(await get("/v1/cases", cursor=filtered))
    assert refused(await get("/v1/cases", cursor=cases, state="suspected"))
    assert len((await get("/v1/cases", cursor=cases, limit=5)).json()["items"]) == 2
    assert len((await get("/v1/cases/ledgers/suspected", cursor=suspected)).json()["items"]) == 2
    assert len((await get("/v1/cases", cursor=filtered, state="suspected")).json()["items"]) == 2

    attempt = {"attempted_on": "2026-11-21", "by": "王老师", "form": "phone", "outcome": "considering"}
    logs = []
    for _ in range(2):
        case = await case_in(svc, school, "persuading")
        for _ in range(2):
            r = await svc.client.post(f"/v1/cases/{case['id']}/persuasions", json=attempt, headers=teacher)
            assert r.status_code == 201, r.text
        logs.append(f"/v1/cases/{case['id']}/persuasions")
    x, y = logs
    first = (await get(x, limit=1)).json()
    assert first["next_cursor"]
    assert refused(await get(y, cursor=first["next_cursor"]))
    rest = (await get(x, cursor=first["next_cursor"])).json()
    assert len(rest["items"]) == 1 and rest["items"][0]["id"] != first["items"][0]["id"]
