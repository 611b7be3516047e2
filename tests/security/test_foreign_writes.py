"""A write cannot put an object into a foreign jurisdiction.

Every operation of every service whose JSON body names an organisation (a school, a town, a receiving
school, an organisation code: the fields below) is discovered from the OpenAPI document, so a new one is
covered without editing this test. For each such operation and each caller whose jurisdiction holds
school A (and its town) but not school B: the request that succeeds with A's codes must not succeed
with B's. A pair where the caller's own request did not succeed (a role not allowed to write there, or a
body the schema example cannot satisfy) proves nothing and is counted apart; the test fails if too few
pairs were meaningful, so the check cannot pass by seeing nothing.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from baoxue.testing.attacks import Operation, discover_operations, resolve

from .conftest import SERVICES, Tally
from .seeds import SEEDS

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
# (Measured 27 Nov: registry 0 — no registry body names a school or town; enrollment 1 — a school
# registering a 学籍, as placements and absence reports need a child or student of the school first;
# casework 5; notify 1 — a town listing a provider; the rest are writes of district-wide roles.)
MIN_MEANINGFUL = {"registry": 0, "enrollment": 1, "casework": 4, "notify": 1}


def _placing(op: Operation, components: dict[str, Any]) -> set[str]:
    media = (op.request_body or {}).get("content", {}).get("application/json")
    if not media:
        return set()
    schema = resolve(media.get("schema", {}), components)
    return set(schema.get("properties") or {}) & set(PLACING_FIELDS)


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
    ops = [
        op
        for op in discover_operations(name, doc)
        if not op.public and op.method in ("POST", "PUT", "PATCH") and not op.path_params
    ]
    tally = Tally(name, "authz writes into a foreign jurisdiction")
    meaningful = 0
    for op in ops:
        fields = _placing(op, components)
        if not fields or (name, op.path) in NOT_PLACING:
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
            if 200 <= theirs.status_code < 300 or theirs.status_code >= 500:
                tally.leak(op, "written into a foreign jurisdiction", role, theirs.status_code)
            elif theirs.headers.get("content-type", "").split(";")[0] != "application/problem+json":
                tally.leak(op, "refusal is not a problem document", role, theirs.status_code)
    tally.publish()
    print(f"{name}: {meaningful} (operation, caller) pairs whose own write succeeded")
    assert not tally.leaks, tally.leaks
    assert meaningful >= MIN_MEANINGFUL[name], (
        f"only {meaningful} own writes succeeded: the check would see nothing; fix the bodies"
    )
