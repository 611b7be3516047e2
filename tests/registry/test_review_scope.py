"""The review queue by jurisdiction: only district roles hold it, and it is filtered like the children.

A town role cannot read or decide items (403). The queue is still filtered by the caller's
jurisdiction through the item's child (hukou town, school district, district): the service functions
are called with principals a token could carry if a town were given the queue, or from another
county, and they see only their children's items; an item outside answers 404 like a missing one.
"""

from __future__ import annotations

import pytest

from baoxue.auth.principal import Principal
from baoxue.errors import NotFound
from registry.linkage import service
from registry.permissions import POLICY
from tests.registry.conftest import BUREAU, INSPECTOR, csv_body, submit
from tests.registry.people import DIANZI_TOWN, LI, SHANCHENG_TOWN, WANG

TOWN_ROLES = ("town", "school_district", "dept_police", "dept_poverty", "dept_dpf", "dept_civil")


def _reviewer(scope: str, org: str) -> Principal:
    return Principal(
        subject=f"reviewer-{scope}",
        roles=frozenset({"bureau"}),
        org=org,
        scope=scope,
        permissions=frozenset({"review:read", "review:decide"}),
    )


async def _conflicts(svc, tokens) -> dict[str, dict]:
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), LI.row()))
    await submit(
        svc,
        tokens,
        "poverty",
        "2026-09",
        csv_body(WANG.row(name="王晓明", category="建档立卡"), LI.row(name="李玫", category="建档立卡")),
    )
    r = await svc.client.get(
        "/v1/review-items", params={"kind": "conflict"}, headers=tokens.headers("bureau", BUREAU)
    )
    assert r.status_code == 200, r.text
    items = {i["hukou_town"]: i for i in r.json()["items"]}
    assert set(items) == {DIANZI_TOWN, SHANCHENG_TOWN}  # the bureau sees the whole district
    return items


def test_only_district_roles_hold_the_review_queue():
    for role in TOWN_ROLES:
        assert not POLICY.permissions_of(frozenset({role})) & {"review:read", "review:decide"}, role
    assert "review:read" in POLICY.permissions_of(frozenset({"inspector"}))
    assert "review:decide" in POLICY.permissions_of(frozenset({"bureau"}))


async def test_review_items_are_filtered_by_the_callers_jurisdiction(start_service, tokens):
    svc = await start_service("registry")
    items = await _conflicts(svc, tokens)
    town = tokens.headers("town", DIANZI_TOWN)
    assert (await svc.client.get("/v1/review-items", headers=town)).status_code == 403
    own = items[DIANZI_TOWN]["id"]
    assert (await svc.client.post(f"/v1/review-items/{own}/reject", headers=town)).status_code == 403
    inspector = await svc.client.get("/v1/review-items", headers=tokens.headers("inspector", INSPECTOR))
    assert len(inspector.json()["items"]) == 2

    dianzi = _reviewer(DIANZI_TOWN, DIANZI_TOWN)
    async with svc.ctx.db.transaction() as s:
        seen = await service.list_items(
            session=s, ctx=svc.ctx, principal=dianzi, kind=None, status=None, after=None, limit=50
        )
        assert [i["id"] for i in seen] == [own]
        other_county = _reviewer("370402", BUREAU)
        assert (
            await service.list_items(
                session=s, ctx=svc.ctx, principal=other_county, kind=None, status=None, after=None, limit=50
            )
            == []
        )
    foreign = items[SHANCHENG_TOWN]["id"]
    for principal, item_id in ((dianzi, foreign), (_reviewer("370402", BUREAU), own), (dianzi, 10**9)):
        with pytest.raises(NotFound) as caught:
            async with svc.ctx.db.transaction() as s:
                await service.decide(
                    session=s, ctx=svc.ctx, principal=principal, item_id=item_id, accept=False
                )
        assert (caught.value.status, caught.value.code) == (404, "not_found")  # foreign ≡ missing
    async with svc.ctx.db.transaction() as s:
        decided = await service.decide(session=s, ctx=svc.ctx, principal=dianzi, item_id=own, accept=False)
    assert decided["status"] == "rejected"
    # the foreign item was not touched
    r = await svc.client.get(
        "/v1/review-items", params={"kind": "conflict"}, headers=tokens.headers("bureau", BUREAU)
    )
    assert [i["id"] for i in r.json()["items"]] == [foreign]
