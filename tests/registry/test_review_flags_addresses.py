"""Deciding lapsed flags and unmatched addresses changes the records, with provenance and events."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from baoxue.auth.principal import Principal
from baoxue.errors import Forbidden, NotFound
from baoxue.pii.citizen_id import check_character
from registry.children.models import ChildHistory
from registry.feeds.models import FeedRow
from registry.linkage import service
from tests.registry.conftest import BUREAU, csv_body, outbox_events, submit
from tests.registry.people import DIANZI_SD, DIANZI_TOWN, LI, SHANCHENG_SD, SHANCHENG_TOWN, WANG, ZHAO

PURPOSE = "data quality review"
NOWHERE = "江苏省苏州市昆山市某路1号"  # matches no town of the district
QUZHUANG = "370406101201"  # 渠庄村, 店子镇
# A reviewer of one town, as a token could carry it should a town be given the queue.
DIANZI_REVIEWER = Principal(
    subject="reviewer-dianzi",
    roles=frozenset({"bureau"}),
    org=DIANZI_TOWN,
    scope=DIANZI_TOWN,
    permissions=frozenset({"review:read", "review:decide"}),
)


async def _child(svc, tokens, id_number: str) -> dict:
    r = await svc.client.post(
        "/v1/children/lookup",
        json={"id_number": id_number},
        headers=tokens.headers("bureau", BUREAU, purpose=PURPOSE),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _items(svc, tokens, kind: str) -> list[dict]:
    r = await svc.client.get(
        "/v1/review-items", params={"kind": kind}, headers=tokens.headers("bureau", BUREAU)
    )
    return r.json()["items"]  # type: ignore[no-any-return]


def _flag(child: dict, category: str) -> dict:
    return next(f for f in child["flags"] if f["category"] == category)


def _updates(events: list[dict], child_id: str) -> list[dict]:
    return [e["data"] for e in events if e["subject"] == child_id]


async def test_a_lapsed_flag_ends_when_accepted_and_is_kept_when_rejected(start_service, tokens):
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU)
    await submit(
        svc, tokens, "civil", "2026-03", csv_body(LI.row(category="低保"), ZHAO.row(category="留守、孤儿"))
    )
    lapsing = await submit(
        svc, tokens, "civil", "2026-09", csv_body(LI.row(category="孤儿"), ZHAO.row(category="孤儿"))
    )
    li, zhao = await _child(svc, tokens, LI.id), await _child(svc, tokens, ZHAO.id)
    items = {i["child_id"]: i for i in await _items(svc, tokens, "flag_lapsed")}
    assert {(i["child_id"], i["attribute"]) for i in items.values()} == {
        (li["id"], "low_income"),
        (zhao["id"], "left_behind"),
    }
    assert li["categories"] == ["orphan"] and zhao["categories"] == ["orphan"]  # lapsed: not counted

    ended = await svc.client.post(f"/v1/review-items/{items[zhao['id']]['id']}/accept", headers=bureau)
    assert ended.status_code == 200, ended.text
    assert ended.json()["evidence"]["flag"]["effect"] == "flag_ended"
    kept = await svc.client.post(f"/v1/review-items/{items[li['id']]['id']}/reject", headers=bureau)
    assert kept.status_code == 200 and kept.json()["status"] == "rejected"

    zhao, li = await _child(svc, tokens, ZHAO.id), await _child(svc, tokens, LI.id)
    assert _flag(zhao, "left_behind")["status"] == "ended" and zhao["categories"] == ["orphan"]
    assert _flag(li, "low_income")["status"] == "active" and li["categories"] == ["low_income", "orphan"]
    assert _flag(li, "low_income")["lapsed_period"] is None and li["needs_review"] is False
    provenance = {
        "category",
        "department",
        "valid_from",
        "last_confirmed",
        "lapsed_period",
        "lapsed_batch_id",
        "review_item",
        "decided_by",
        "effect",
    }
    [z] = [h for h in zhao["history"] if h["kind"] == "flag_ended"]
    [l_] = [h for h in li["history"] if h["kind"] == "flag_kept"]
    for entry, category in ((z, "left_behind"), (l_, "low_income")):
        assert set(entry["detail"]) == provenance and entry["batch_id"] == lapsing["id"]
        assert (entry["detail"]["category"], entry["detail"]["department"]) == (category, "civil")
        assert (entry["detail"]["valid_from"], entry["detail"]["lapsed_period"]) == ("2026-03", "2026-09")
    updated = await outbox_events(svc, "child.updated.v1")
    assert _updates(updated, li["id"])[-1]["categories"] == ["low_income", "orphan"]  # the consumers learn it

    # Civil affairs asserts the ended flag again: active from the new period. The kept one lapses again
    # when a later feed leaves it out: a new item.
    await submit(
        svc, tokens, "civil", "2027-03", csv_body(LI.row(category="孤儿"), ZHAO.row(category="留守、孤儿"))
    )
    zhao, li = await _child(svc, tokens, ZHAO.id), await _child(svc, tokens, LI.id)
    assert (_flag(zhao, "left_behind")["status"], _flag(zhao, "left_behind")["valid_from"]) == (
        "active",
        "2027-03",
    )
    assert _flag(li, "low_income")["status"] == "lapsed"
    assert [i["child_id"] for i in await _items(svc, tokens, "flag_lapsed")] == [li["id"]]


async def test_accepting_an_unmatched_address_sets_the_chosen_hukou_place(start_service, tokens):
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU)
    batch = await submit(
        svc, tokens, "police", "2026-09", csv_body(WANG.row(hukou=NOWHERE), LI.row(hukou=NOWHERE))
    )
    wang, li = await _child(svc, tokens, WANG.id), await _child(svc, tokens, LI.id)
    assert wang["hukou_town"] is None and wang["hukou_school_district"] is None
    items = {i["child_id"]: i for i in await _items(svc, tokens, "address_unmatched")}
    assert set(items) == {wang["id"], li["id"]}
    town = tokens.headers("town", DIANZI_TOWN)
    assert (await svc.client.get(f"/v1/children/{wang['id']}", headers=town)).status_code == 404

    url = f"/v1/review-items/{items[wang['id']]['id']}/accept"
    for body, code in (
        (None, "review_choice_required"),
        ({"hukou_village": "370406101999"}, "review_choice_invalid"),  # no such village
        (
            {"hukou_village": QUZHUANG, "hukou_town": SHANCHENG_TOWN},
            "review_choice_invalid",
        ),  # not of that town
        ({"hukou_town": "37040610101"}, "review_choice_invalid"),  # a school district, not a town
    ):
        r = await svc.client.post(url, json=body, headers=bureau)
        assert (r.status_code, r.json()["code"]) == (422, code), (body, r.text)
    assert len(await _items(svc, tokens, "address_unmatched")) == 2  # nothing decided by those

    r = await svc.client.post(url, json={"hukou_village": QUZHUANG}, headers=bureau)
    assert r.status_code == 200, r.text
    assert r.json()["hukou_town"] == DIANZI_TOWN
    wang = await _child(svc, tokens, WANG.id)
    assert (wang["hukou_town"], wang["hukou_village"], wang["hukou_school_district"]) == (
        DIANZI_TOWN,
        QUZHUANG,
        DIANZI_SD,
    )
    assert wang["needs_review"] is False
    [h] = [h for h in wang["history"] if h["kind"] == "address_resolved"]
    assert h["batch_id"] == batch["id"] and h["detail"]["department"] == "police"
    assert (h["detail"]["previous_town"], h["detail"]["hukou_village"]) == (None, QUZHUANG)
    assert _updates(await outbox_events(svc, "child.updated.v1"), wang["id"])[-1]["hukou_town"] == DIANZI_TOWN
    assert (
        await svc.client.get(f"/v1/children/{wang['id']}", headers=town)
    ).status_code == 200  # now its town's

    # A town only (no village known). A reviewer of one town does not see a child with no town yet.
    li_item = items[li["id"]]["id"]
    with pytest.raises(NotFound):
        async with svc.ctx.db.transaction() as s:
            await service.decide(
                session=s,
                ctx=svc.ctx,
                principal=DIANZI_REVIEWER,
                item_id=li_item,
                accept=True,
                hukou_town=DIANZI_TOWN,
            )
    r = await svc.client.post(
        f"/v1/review-items/{li_item}/accept", json={"hukou_town": SHANCHENG_TOWN}, headers=bureau
    )
    assert r.status_code == 200, r.text
    li = await _child(svc, tokens, LI.id)
    assert (li["hukou_town"], li["hukou_village"], li["hukou_school_district"]) == (
        SHANCHENG_TOWN,
        None,
        SHANCHENG_SD,
    )
    async with svc.ctx.db.transaction() as s:
        details = (await s.execute(select(ChildHistory.detail))).scalars().all()
    assert NOWHERE not in json.dumps(details, ensure_ascii=False)  # codes and ids only


async def test_a_reviewer_cannot_move_a_child_out_of_its_jurisdiction(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-03", csv_body(ZHAO.row()))
    await submit(svc, tokens, "police", "2026-09", csv_body(ZHAO.row(hukou=NOWHERE)))
    zhao = await _child(svc, tokens, ZHAO.id)
    assert zhao["hukou_town"] == DIANZI_TOWN  # known from the earlier feed
    [item] = await _items(svc, tokens, "address_unmatched")
    with pytest.raises(Forbidden) as refused:
        async with svc.ctx.db.transaction() as s:
            await service.decide(
                session=s,
                ctx=svc.ctx,
                principal=DIANZI_REVIEWER,
                item_id=item["id"],
                accept=True,
                hukou_town=SHANCHENG_TOWN,
            )
    assert refused.value.code == "outside_jurisdiction"
    assert (await _child(svc, tokens, ZHAO.id))["hukou_town"] == DIANZI_TOWN
    async with svc.ctx.db.transaction() as s:
        done = await service.decide(
            session=s,
            ctx=svc.ctx,
            principal=DIANZI_REVIEWER,
            item_id=item["id"],
            accept=True,
            hukou_village=QUZHUANG,
        )
    assert done["status"] == "accepted"
    zhao = await _child(svc, tokens, ZHAO.id)
    assert (zhao["hukou_village"], zhao["hukou_school_district"]) == (QUZHUANG, DIANZI_SD)
    [h] = [h for h in zhao["history"] if h["kind"] == "address_resolved"]
    assert (h["detail"]["previous_town"], h["detail"]["decided_by"]) == (DIANZI_TOWN, "reviewer-dianzi")


async def test_every_review_reason_of_a_row_opens_a_review_item_of_its_code(start_service, tokens):
    """Rows kept with a reason of severity ``review`` are on the queue: an item of that code about the
    row's child (``address_unmatched`` and the ID number's disagreements and address codes alike)."""
    svc = await start_service("registry")
    body_unknown = "000406" + ZHAO.id[6:17]
    body_retired = "370421" + LI.id[6:17]  # 滕县 until 1987: not a division code in 2014
    rows_sent = (
        WANG.row(birth="2016-05-03"),  # the ID number says 2016-05-02
        WANG.but(seq=31, name="王小刚").row(sex="女"),  # the ID number says male
        ZHAO.row(id=body_unknown + check_character(body_unknown)),
        LI.row(id=body_retired + check_character(body_retired)),
        WANG.but(seq=32, name="王大明").row(hukou=NOWHERE),
    )
    batch = await submit(svc, tokens, "police", "2026-09", csv_body(*rows_sent))
    assert (batch["accepted"], batch["rejected"]) == (5, 0)
    async with svc.ctx.db.transaction() as s:
        rows = dict((await s.execute(select(FeedRow.row_number, FeedRow.child_id))).all())
    expected = {
        (rows[1], "id_birth_date_mismatch"),
        (rows[2], "id_sex_mismatch"),
        (rows[3], "id_address_code_unknown"),
        (rows[4], "id_address_code_not_in_use"),
        (rows[5], "address_unmatched"),
    }
    found = set()
    for _, kind in expected:
        items = await _items(svc, tokens, kind)
        found |= {(i["child_id"], i["kind"]) for i in items}
        assert all(i["batch_id"] == batch["id"] for i in items)
    assert found == expected
    for child_id, _ in expected:
        r = await svc.client.get(
            f"/v1/children/{child_id}", headers=tokens.headers("bureau", BUREAU, purpose=PURPOSE)
        )
        assert r.json()["needs_review"] is True
    codes = (await svc.client.get("/v1/code-lists", headers=tokens.headers("bureau", BUREAU))).json()
    assert {kind for _, kind in expected} <= {c["code"] for c in codes["review_kind"]}
    # The same rows next period: the items still open are not opened twice.
    await submit(svc, tokens, "police", "2027-03", csv_body(*rows_sent))
    for _, kind in expected:
        assert len(await _items(svc, tokens, kind)) == 1, kind
