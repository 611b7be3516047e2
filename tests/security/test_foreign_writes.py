"""A write cannot put an object into a foreign jurisdiction.

Every operation of every service whose JSON body names an organisation (a school, a town, a receiving
school, an organisation code: the fields below; an optional body's too) is discovered from the OpenAPI
document, so a new one is covered without editing this test. For each such operation and each caller
whose jurisdiction holds school A (and its town) but not school B: the request that succeeds with A's
codes must not succeed with B's. A pair where the caller's own request did not succeed (a role not
allowed to write there, or a body the schema example cannot satisfy) proves nothing and is counted
apart; the test fails if too few pairs were meaningful, so the check cannot pass by seeing nothing.

An operation on an existing object (a path parameter) needs that object in A's jurisdiction first:
``ON_OBJECTS`` says how to make one, with the body and the callers (a decision is taken once, so B's
codes are sent first, then A's on the same object); such an operation without an entry fails the test.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from baoxue.testing.attacks import ROLE_ORGS, Operation, discover_operations, resolve

from .conftest import SERVICES, Tally
from .seeds import SEEDS, SeedContext, _police_batch, fresh_id_number

SCHOOL_A, TOWN_A, DISTRICT_A = "37040600101001", "370406001", "37040600101"
SCHOOL_B, TOWN_B, DISTRICT_B = "37040610101001", "370406101", "37040610101"
NARROW = {"school": SCHOOL_A, "teacher": SCHOOL_A, "school_district": DISTRICT_A, "town": TOWN_A}
# Body fields that place an object in an organisation's jurisdiction → (A's value, B's value).
PLACING_FIELDS = {
    "school_code": (SCHOOL_A, SCHOOL_B),
    "receiving_school": (SCHOOL_A, SCHOOL_B),
    "hukou_town": (TOWN_A, TOWN_B),
    "town": (TOWN_A, TOWN_B),
    "org": (SCHOOL_A, SCHOOL_B),
}
# Operations whose body names an organisation without placing anything there, with the reason. (Not
# notify's /v1/providers/matches: a hit writes an alert into the named town's inbox.)
NOT_PLACING: dict[tuple[str, str], str] = {}
# At least this many (operation, caller) pairs must have succeeded with the caller's own codes.
# (Measured 27 Nov: enrollment 1 — a school registering a 学籍, as placements and absence reports need a
# child or student of the school first; casework 5; notify 1 — a town listing a provider; the rest are
# writes of district-wide roles. 29 Nov: registry 1 — a reviewer of town A settling an unmatched address
# (ON_OBJECTS); its other writes are the departments' and the bureau's, district-wide.)
MIN_MEANINGFUL = {"registry": 1, "enrollment": 1, "casework": 4, "notify": 1}


@dataclass(frozen=True)
class OnObject:
    """How to attack a placing write on an existing object: ``create`` makes one in A's jurisdiction
    (context, school, town) and returns the path parameters; ``body`` is the request's body before the
    placing fields are set; ``callers`` hold school A's town but not school B's."""

    create: Callable[[SeedContext, str, str], Awaitable[dict[str, str]]]
    body: Callable[[], dict[str, Any]]
    callers: dict[str, str]


async def _registry_unmatched_address(ctx: SeedContext, school: str, town: str) -> dict[str, str]:
    """An ``address_unmatched`` item about a child of ``town``: the police feed the child with its hukou
    address there, then with an address no town of the district matches (the child keeps its town)."""
    idn = fresh_id_number()
    await _police_batch(ctx, town, idn=idn)
    await _police_batch(ctx, town, idn=idn, 户籍地址="江苏省苏州市昆山市某路1号")
    bureau = ctx.tokens.headers("bureau", ROLE_ORGS["bureau"])
    child = await ctx.svc.client.post("/v1/children/lookup", json={"id_number": idn}, headers=bureau)
    assert child.status_code == 200, child.text[:300]
    r = await ctx.svc.client.get(
        "/v1/review-items", params={"kind": "address_unmatched", "limit": 200}, headers=bureau
    )
    assert r.status_code == 200, r.text[:300]
    [item] = [i for i in r.json()["items"] if i["child_id"] == child.json()["id"]]
    return {"item_id": str(item["id"])}


# Placing writes on an existing object, by (service, path).
ON_OBJECTS: dict[tuple[str, str], OnObject] = {
    # Settling an unmatched address moves a child to the town chosen: the bureau's role decides, and a
    # reviewer whose organisation is a town (scope: that town) may only choose a town of its own.
    ("registry", "/v1/review-items/{item_id}/accept"): OnObject(
        _registry_unmatched_address, dict, {"bureau": TOWN_A}
    ),
}


def _placing(op: Operation, components: dict[str, Any]) -> set[str]:
    media = (op.request_body or {}).get("content", {}).get("application/json")
    if not media:
        return set()
    schema = resolve(media.get("schema", {}), components)
    # An optional body is anyOf [the model, null]: the model's fields count.
    shapes = [resolve(s, components) for s in schema.get("anyOf") or schema.get("oneOf") or [schema]]
    fields = set().union(*(set(shape.get("properties") or {}) for shape in shapes))
    return fields & set(PLACING_FIELDS)


def _refused(tally: Tally, op: Operation, role: str, theirs: Any) -> None:
    if 200 <= theirs.status_code < 300 or theirs.status_code >= 500:
        tally.leak(op, "written into a foreign jurisdiction", role, theirs.status_code)
    elif theirs.headers.get("content-type", "").split(";")[0] != "application/problem+json":
        tally.leak(op, "refusal is not a problem document", role, theirs.status_code)


def _body(op: Operation, components: dict[str, Any], fields: set[str], side: int) -> Any:
    seeded = [s for s in SEEDS if s.service == op.service and s.path == op.path and s.create is None]
    body = seeded[0].body(SCHOOL_A, TOWN_A) if seeded else copy.deepcopy(op.json_body(components))
    if not isinstance(body, dict):
        return body
    for name in fields:
        body[name] = PLACING_FIELDS[name][side]
    return body


@pytest.mark.parametrize("name", SERVICES)
async def test_no_write_places_an_object_in_a_foreign_jurisdiction(start_service, tokens, name):
    svc = await start_service(name)
    doc = svc.app.openapi()
    components = doc.get("components", {})
    writes = [
        op
        for op in discover_operations(name, doc)
        if not op.public and op.method in ("POST", "PUT", "PATCH") and _placing(op, components)
    ]
    ops = [op for op in writes if not op.path_params]
    on_objects = [op for op in writes if op.path_params]
    unplanned = [op.label for op in on_objects if (name, op.path) not in ON_OBJECTS]
    assert not unplanned, f"placing writes on objects without an ON_OBJECTS entry: {unplanned}"
    tally = Tally(name, "authz writes into a foreign jurisdiction")
    meaningful = 0
    for op in on_objects:
        plan = ON_OBJECTS[name, op.path]
        fields = _placing(op, components)
        for role, org in plan.callers.items():
            params = await plan.create(SeedContext(svc, tokens, None), SCHOOL_A, TOWN_A)
            path = op.path.format(**params)
            headers = tokens.headers(role, org, purpose="authorisation matrix")
            bodies = [plan.body() | {f: PLACING_FIELDS[f][side] for f in fields} for side in (0, 1)]
            theirs = await svc.client.request(op.method, path, headers=headers, json=bodies[1])
            tally.tried += 1
            _refused(tally, op, role, theirs)
            own = await svc.client.request(op.method, path, headers=headers, json=bodies[0])
            if 200 <= own.status_code < 300:
                meaningful += 1
    for op in ops:
        fields = _placing(op, components)
        if (name, op.path) in NOT_PLACING:
            continue
        for role, org in NARROW.items():
            headers = tokens.headers(role, org, purpose="authorisation matrix")
            own = await svc.client.request(
                op.method, op.path, headers=headers, json=_body(op, components, fields, 0)
            )
            if not 200 <= own.status_code < 300:
                continue
            meaningful += 1
            theirs = await svc.client.request(
                op.method, op.path, headers=headers, json=_body(op, components, fields, 1)
            )
            tally.tried += 1
            _refused(tally, op, role, theirs)
    tally.publish()
    print(f"{name}: {meaningful} (operation, caller) pairs whose own write succeeded")
    assert not tally.leaks, tally.leaks
    assert meaningful >= MIN_MEANINGFUL[name], (
        f"only {meaningful} own writes succeeded: the check would see nothing; fix the bodies"
    )
