"""Operation × role × object (own, foreign, missing), discovered from each service's OpenAPI.

Figures: combinations tried and leaks (goal 0). A leak is a 5xx, a 2xx for an object that does not
exist, a foreign object answered differently from a missing one, or a list row from another school.
"""

from __future__ import annotations

from typing import Any

import pytest

from baoxue.auth.roles import ROLES
from baoxue.testing.attacks import ROLE_ORGS, Operation, discover_operations, foreign_rows

from .conftest import SERVICES, Tally
from .seeds import SEEDS, UNSEEDED, Seed, SeedContext

SCHOOL_A, TOWN_A = "37040600101001", "370406001"  # 山城街道中心小学
SCHOOL_B, TOWN_B = "37040610101001", "370406101"  # 店子镇中心小学
# Callers whose jurisdiction holds school A but not school B.
NARROW = {"school": SCHOOL_A, "teacher": SCHOOL_A, "school_district": "37040600101", "town": TOWN_A}


def _ops(svc: Any) -> tuple[list[Operation], dict[str, Any]]:
    doc = svc.app.openapi()
    return [op for op in discover_operations(svc.spec.name, doc) if not op.public], doc.get("components", {})


@pytest.mark.parametrize("name", SERVICES)
async def test_every_role_on_every_operation_with_a_missing_object(start_service, tokens, name):
    """Never 5xx; never 2xx for an object that does not exist; errors are problem details."""
    svc = await start_service(name)
    ops, components = _ops(svc)
    tally = Tally(name, "authz missing objects")
    for op in ops:
        body = op.json_body(components)
        for role in ROLES:
            headers = tokens.headers(role, ROLE_ORGS[role], purpose="authorisation matrix")
            r = await svc.client.request(op.method, op.url(), headers=headers, json=body)
            tally.tried += 1
            if r.status_code >= 500:
                tally.leak(op, "5xx", role, r.status_code, r.text[:200])
            elif op.path_params and 200 <= r.status_code < 300:
                tally.leak(op, "2xx for a random id", role, r.status_code)
    tally.publish()
    assert not tally.leaks, tally.leaks


def test_every_path_parameter_has_a_seed():
    """A new operation taking an object id fails here until the object has a seed (or a stated reason)."""
    from baoxue.app import create_app
    from baoxue.catalog import load_service

    seeded = {(s.service, s.param) for s in SEEDS}
    missing = []
    for name in SERVICES:
        spec = load_service(name)
        doc = create_app(spec, spec.settings_cls()).openapi()
        for op in discover_operations(name, doc):
            for param in op.path_params:
                if not op.public and (name, param) not in seeded and (name, param) not in UNSEEDED:
                    missing.append(f"{op.label} {{{param}}}")
    assert not missing, f"operations whose path parameter has no seed in tests/security/seeds.py: {missing}"
    stale = sorted(set(UNSEEDED) & seeded)
    assert not stale, f"seeded now, remove from UNSEEDED: {stale}"


async def _seed(svc: Any, tokens: Any, seed: Seed, school: str, town: str, publisher: Any = None) -> str:
    if seed.create is not None:
        return await seed.create(SeedContext(svc, tokens, publisher), school, town)
    r = await svc.client.post(
        seed.path, json=seed.body(school, town), headers=tokens.headers(seed.role, school)
    )
    assert r.status_code in (200, 201), (seed.path, r.status_code, r.text[:300])
    return str(r.json()[seed.id_field])


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"{s.service}:{s.param}")
async def test_foreign_objects_answer_like_missing_ones_and_lists_hold_no_foreign_rows(
    start_service, tokens, seed, event_publisher
):
    svc = await start_service(seed.service)
    await svc.wait_events_ready(timeout=20)
    ops, components = _ops(svc)
    own = await _seed(svc, tokens, seed, SCHOOL_A, TOWN_A, event_publisher)
    foreign = await _seed(svc, tokens, seed, SCHOOL_B, TOWN_B, event_publisher)
    callers = seed.callers or NARROW
    tally = Tally(seed.service, "authz foreign objects and lists")
    object_ops = [op for op in ops if op.path_params == (seed.param,)]
    assert object_ops, f"no operation takes {{{seed.param}}}"
    for op in object_ops:
        body = op.json_body(components)
        for role, org in callers.items():
            headers = tokens.headers(role, org, purpose="authorisation matrix")
            missing = await svc.client.request(op.method, op.url(), headers=headers, json=body)
            theirs = await svc.client.request(
                op.method, op.url({seed.param: foreign}), headers=headers, json=body
            )
            tally.tried += 1
            if 200 <= theirs.status_code < 300 or theirs.status_code >= 500:
                tally.leak(op, "foreign answered", role, theirs.status_code)
            elif (theirs.status_code, theirs.json().get("code")) != (
                missing.status_code,
                missing.json().get("code"),
            ):
                tally.leak(
                    op,
                    "foreign≠missing",
                    role,
                    theirs.status_code,
                    theirs.json().get("code"),
                    missing.status_code,
                    missing.json().get("code"),
                )
    # Control: the owner reads its own object (the check above could have been vacuous otherwise).
    reads = [op for op in object_ops if op.method == "GET" and op.path.endswith("{" + seed.param + "}")]
    for op in reads:
        reader_org = NARROW.get(seed.reader) or ROLE_ORGS[seed.reader]
        r = await svc.client.get(
            op.url({seed.param: own}), headers=tokens.headers(seed.reader, reader_org, purpose="control")
        )
        assert r.status_code == 200, (op.label, r.status_code, r.text[:200])

    lists = [op for op in ops if op.is_collection_read]
    for op in lists:
        for role, org in NARROW.items():
            r = await svc.client.get(
                op.path, headers=tokens.headers(role, org, purpose="authorisation matrix")
            )
            tally.tried += 1
            if r.status_code >= 500:
                tally.leak(op, "5xx", role, r.status_code)
            elif r.status_code == 200 and foreign_rows(
                r.json(), ROLE_ORGS[role] if role != "school_district" else org
            ):
                tally.leak(op, "foreign row in list", role)
    # Control: the bureau's list shows school B's rows, so the row check is able to see a leak.
    bureau_sees_b = False
    for op in lists:
        r = await svc.client.get(
            op.path, headers=tokens.headers("bureau", ROLE_ORGS["bureau"], purpose="control")
        )
        bureau_sees_b |= r.status_code == 200 and bool(foreign_rows(r.json(), SCHOOL_A))
    tally.publish()
    assert not tally.leaks, tally.leaks
    assert bureau_sees_b or not lists, "no list showed a row with an organisation code: the check saw nothing"
