"""Break-the-glass: a grant widens the caller's jurisdiction until it expires, each use is audited, the
bureau lists the uses, and invalid grants are refused."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from baoxue.testing.attacks import ROLE_ORGS

SCHOOL_A, SCHOOL_B, TOWN_B = "37040600101001", "37040610101001", "370406101"
REASON = "儿童失联，需跨镇核查就学情况"


def _grant(**over):
    grant = {"id": "bg-2026-0042", "scope": "370406", "reason": REASON, "exp": int(time.time()) + 600}
    grant.update(over)
    return grant


async def _casework_with_foreign_case(start_service, tokens):
    svc = await start_service("casework")
    body = {
        "school_code": SCHOOL_B,
        "hukou_town": TOWN_B,
        "student_id": "stu-bg-1",
        "reason": "learning_weariness",
    }
    r = await svc.client.post("/v1/cases", json=body, headers=tokens.headers("school", SCHOOL_B))
    assert r.status_code == 201, r.text
    return svc, r.json()["id"]


async def test_a_grant_widens_jurisdiction_is_audited_and_listed_for_the_bureau(start_service, tokens):
    svc, case_id = await _casework_with_foreign_case(start_service, tokens)
    plain = tokens.headers("school", SCHOOL_A)
    assert (await svc.client.get(f"/v1/cases/{case_id}", headers=plain)).status_code == 404

    glass = tokens.headers("school", SCHOOL_A, sub="u-a-1", breakglass=_grant())
    seen = await svc.client.get(f"/v1/cases/{case_id}", headers=glass)
    assert seen.status_code == 200, seen.text
    listed = await svc.client.get("/v1/cases", headers=glass)
    assert listed.status_code == 200 and case_id in {c["id"] for c in listed.json()["items"]}

    table = svc.ctx.audit.table
    async with svc.ctx.db.transaction() as s:
        rows = (await s.execute(select(table).order_by(table.c.position))).mappings().all()
    uses = [r for r in rows if r["action"] == "breakglass"]
    assert len(uses) == 2 and {u["actor"] for u in uses} == {"u-a-1"} and uses[0]["purpose"] == REASON
    marked = [
        r for r in rows if r["action"] == "read" and (r["detail"] or "").startswith("breakglass:bg-2026-0042")
    ]
    assert marked and all(r["purpose"] == REASON for r in marked), (
        "reads under a grant carry its id and reason"
    )

    page = await svc.client.get("/v1/breakglass/uses", headers=tokens.headers("bureau", ROLE_ORGS["bureau"]))
    assert page.status_code == 200, page.text
    items = page.json()["items"]
    assert [i["grant_id"] for i in items] == ["bg-2026-0042", "bg-2026-0042"]
    assert items[0]["detail"]["home_scope"] == SCHOOL_A and items[0]["detail"]["scope"] == "370406"
    assert items[0]["reason"] == REASON and items[0]["position"] > items[1]["position"]
    first = await svc.client.get(
        "/v1/breakglass/uses?limit=1", headers=tokens.headers("inspector", ROLE_ORGS["inspector"])
    )
    assert len(first.json()["items"]) == 1 and first.json()["next_cursor"]
    for role in ("school", "town", "dept_police"):
        r = await svc.client.get("/v1/breakglass/uses", headers=tokens.headers(role, ROLE_ORGS[role]))
        assert r.status_code == 403 and r.json()["code"] == "breakglass_list_forbidden", role


# Grants are built when the test runs, not when it is collected: a suite that runs longer than a grant's
# default ten minutes would otherwise see every grant "expired".
@pytest.mark.parametrize(
    ("make_grant", "why"),
    [
        (lambda: _grant(exp=int(time.time()) - 1), "expired"),
        (lambda: _grant(reason="看看"), "reason_missing"),
        (lambda: _grant(reason=None), "reason_missing"),
        (lambda: _grant(scope="370406101"), "scope_does_not_contain_home"),  # a sibling town, not a widening
        (lambda: _grant(scope="999999"), "unknown_scope"),
        (lambda: _grant(exp=int(time.time()) + 48 * 3600), "outlives_token"),
        (lambda: _grant(id=""), "id_missing"),
        (lambda: "370406", "not_an_object"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_invalid_grants_refuse_the_request(start_service, tokens, make_grant, why):
    svc, case_id = await _casework_with_foreign_case(start_service, tokens)
    headers = tokens.headers("school", SCHOOL_A, breakglass=make_grant())
    r = await svc.client.get(f"/v1/cases/{case_id}", headers=headers)
    assert r.status_code == 403 and r.json()["code"] == "breakglass_invalid" and r.json()["reason"] == why
    table = svc.ctx.audit.table
    async with svc.ctx.db.transaction() as s:
        uses = (await s.execute(select(table).where(table.c.action == "breakglass"))).all()
    assert uses == []


async def test_a_grant_longer_than_a_day_is_refused(start_service, tokens):
    import datetime as dt

    svc, case_id = await _casework_with_foreign_case(start_service, tokens)
    headers = tokens.headers(
        "school", SCHOOL_A, ttl=dt.timedelta(hours=30), breakglass=_grant(exp=int(time.time()) + 25 * 3600)
    )
    r = await svc.client.get(f"/v1/cases/{case_id}", headers=headers)
    assert r.status_code == 403 and r.json()["reason"] == "too_long"
