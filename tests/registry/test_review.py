"""Accepting review items changes the records: a conflict keeps the chosen value, a link or ID collision merges."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from baoxue.auth.principal import Principal
from baoxue.errors import Forbidden
from registry.children.models import ChildHistory, ReviewItem
from registry.feeds.models import FeedRow
from registry.linkage import service
from tests.registry.conftest import BUREAU, csv_body, outbox_events, submit
from tests.registry.people import LI, SHANCHENG, SHANCHENG_TOWN, WANG

PURPOSE = "data quality review"


async def _child(svc, tokens, id_number: str) -> dict:
    r = await svc.client.post(
        "/v1/children/lookup",
        json={"id_number": id_number},
        headers=tokens.headers("bureau", BUREAU, purpose=PURPOSE),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _items(svc, tokens, kind: str, status: str = "open") -> list[dict]:
    r = await svc.client.get(
        "/v1/review-items", params={"kind": kind, "status": status}, headers=tokens.headers("bureau", BUREAU)
    )
    return r.json()["items"]  # type: ignore[no-any-return]


def _assertion(child: dict, attribute: str, department: str) -> dict:
    return next(
        a for a in child["provenance"] if a["attribute"] == attribute and a["department"] == department
    )


async def test_accepting_a_conflict_applies_the_chosen_value_with_provenance(start_service, tokens):
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU)
    await submit(svc, tokens, "police", "2026-03", csv_body(WANG.row()))
    batch = await submit(
        svc,
        tokens,
        "poverty",
        "2026-09",
        csv_body(WANG.row(name="王晓明", birth="2016-05-12", category="建档立卡")),
    )
    wang = await _child(svc, tokens, WANG.id)
    items = {i["attribute"]: i for i in await _items(svc, tokens, "conflict")}
    assert set(items) == {"name", "birth_date"} and wang["needs_review"] is True
    url = f"/v1/review-items/{items['birth_date']['id']}/accept"
    r = await svc.client.post(url, headers=bureau)
    assert (r.status_code, r.json()["code"]) == (422, "review_choice_required")
    wrong = _assertion(wang, "name", "poverty")["id"]  # a value of another attribute
    r = await svc.client.post(url, json={"assertion_id": wrong}, headers=bureau)
    assert (r.status_code, r.json()["code"]) == (422, "review_choice_invalid")
    assert (await _items(svc, tokens, "conflict"))[0]["status"] == "open"  # nothing decided by those

    chosen = _assertion(wang, "birth_date", "poverty")
    r = await svc.client.post(url, json={"assertion_id": chosen["id"]}, headers=bureau)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    assert r.json()["evidence"]["chosen"] == {
        "attribute": "birth_date",
        "assertion_id": chosen["id"],
        "department": "poverty",
        "batch_id": batch["id"],
        "period": "2026-09",
    }
    wang = await _child(svc, tokens, WANG.id)
    assert wang["birth_date"] == "2016-05-12" and wang["name"] == "王小明"
    assert wang["needs_review"] is True  # the name conflict is still open
    resolved = [h for h in wang["history"] if h["kind"] == "conflict_resolved"]
    assert [(h["detail"]["attribute"], h["detail"]["department"], h["batch_id"]) for h in resolved] == [
        ("birth_date", "poverty", batch["id"])
    ]
    updated = [e for e in await outbox_events(svc, "child.updated.v1") if e["subject"] == wang["id"]]
    assert updated[-1]["data"]["birth_date"] == "2016-05-12"

    r = await svc.client.post(
        f"/v1/review-items/{items['name']['id']}/accept",
        json={"assertion_id": _assertion(wang, "name", "poverty")["id"]},
        headers=bureau,
    )
    assert r.status_code == 200, r.text
    wang = await _child(svc, tokens, WANG.id)
    assert wang["name"] == "王晓明" and wang["needs_review"] is True
    # The poverty row's birth date also disagreed with its ID number: an item of its own, decided apart.
    [mismatch] = await _items(svc, tokens, "id_birth_date_mismatch")
    assert (mismatch["child_id"], mismatch["batch_id"]) == (wang["id"], batch["id"])
    r = await svc.client.post(f"/v1/review-items/{mismatch['id']}/reject", headers=bureau)
    assert r.status_code == 200, r.text
    wang = await _child(svc, tokens, WANG.id)
    assert wang["needs_review"] is False
    listed = (await svc.client.get("/v1/children", params={"age_on": "2026-08-31"}, headers=bureau)).json()
    assert [c["name"] for c in listed["items"]] == ["王**"]
    async with svc.ctx.db.transaction() as s:
        details = (await s.execute(select(ChildHistory.detail))).scalars().all()
    assert "王晓明" not in json.dumps(details, ensure_ascii=False)  # history holds codes and ids only


async def test_accepting_a_phone_conflict_keeps_the_chosen_departments_phone(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))
    await submit(svc, tokens, "civil", "2026-09", csv_body(WANG.row(phone="13512345678", category="留守")))
    wang = await _child(svc, tokens, WANG.id)
    assert wang["guardian_phone"] == "13512345678"  # the latest feed's
    [item] = await _items(svc, tokens, "conflict")
    r = await svc.client.post(
        f"/v1/review-items/{item['id']}/accept",
        json={"assertion_id": _assertion(wang, "guardian_phone", "police")["id"]},
        headers=tokens.headers("bureau", BUREAU),
    )
    assert r.status_code == 200, r.text
    wang = await _child(svc, tokens, WANG.id)
    assert wang["guardian_phone"] == WANG.phone and wang["needs_review"] is False


async def test_accepting_an_id_collision_merges_the_row_into_the_id_numbers_child(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))
    stranger = WANG.row(name="孙悟空", guardian="孙大圣", birth="", sex="", category="留守")
    await submit(svc, tokens, "civil", "2026-09", csv_body(stranger))
    [item] = await _items(svc, tokens, "id_collision")
    wang = await _child(svc, tokens, WANG.id)
    assert "left_behind" not in wang["categories"]
    r = await svc.client.post(
        f"/v1/review-items/{item['id']}/accept", headers=tokens.headers("bureau", BUREAU)
    )
    assert r.status_code == 200, r.text
    assert r.json()["merge_id"]
    wang = await _child(svc, tokens, WANG.id)
    assert wang["merged_records"] == [item["child_id"]] and "left_behind" in wang["categories"]
    other = (
        await svc.client.get(f"/v1/children/{item['child_id']}", headers=tokens.headers("bureau", BUREAU))
    ).json()
    assert (other["status"], other["merged_into"], other["needs_review"]) == ("duplicate", wang["id"], False)


async def test_accepting_an_id_collision_does_not_decrypt_the_rows_id_number(start_service, tokens):
    """The holder stored on the item decides the merge; the row's encrypted ID number is not read (here
    it is gone, and the accept still merges into the holder the list named)."""
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))
    await submit(svc, tokens, "civil", "2026-09", csv_body(WANG.row(name="孙悟空", guardian="孙大圣")))
    [item] = await _items(svc, tokens, "id_collision")
    wang = await _child(svc, tokens, WANG.id)
    assert item["other_child_id"] == wang["id"]
    async with svc.ctx.db.transaction() as s:
        await s.execute(update(FeedRow).where(FeedRow.child_id == item["child_id"]).values(id_cipher=None))
    r = await svc.client.post(
        f"/v1/review-items/{item['id']}/accept", headers=tokens.headers("bureau", BUREAU)
    )
    assert r.status_code == 200, r.text
    assert (await _child(svc, tokens, WANG.id))["merged_records"] == [item["child_id"]]


async def test_accepting_a_link_candidate_merges_and_clears_needs_review(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))
    await submit(
        svc,
        tokens,
        "poverty",
        "2026-09",
        csv_body(WANG.row(id="", name="王晓明", birth="2016-05-12", category="建档立卡")),
    )
    [item] = await _items(svc, tokens, "link_candidate")
    bureau = tokens.headers("bureau", BUREAU)
    before = (await svc.client.get(f"/v1/children/{item['child_id']}", headers=bureau)).json()
    assert before["needs_review"] is True
    r = await svc.client.post(f"/v1/review-items/{item['id']}/accept", headers=bureau)
    assert r.status_code == 200 and r.json()["merge_id"]
    wang = await _child(svc, tokens, WANG.id)
    assert wang["merged_records"] == [item["child_id"]] and "registered_poor" in wang["categories"]
    merged = (await svc.client.get(f"/v1/children/{item['child_id']}", headers=bureau)).json()
    assert (merged["status"], merged["needs_review"]) == ("duplicate", False)


async def test_an_id_collision_item_names_the_child_holding_the_id_number_within_jurisdiction(
    start_service, tokens
):
    """The clerk compares the row's record with the child holding its ID number: the item carries that
    child's id (list and detail) — unless it is outside the caller's jurisdiction, which the item says
    without the id, and which also keeps such a caller from accepting (merging into a foreign child)."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU)
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))  # 店子镇
    stranger = WANG.row(
        name="孙悟空",
        guardian="孙大圣",
        birth="",
        sex="",
        category="留守",
        hukou=SHANCHENG,
        current=SHANCHENG,
    )
    await submit(svc, tokens, "civil", "2026-09", csv_body(stranger))  # 山城街道
    wang = await _child(svc, tokens, WANG.id)
    [item] = await _items(svc, tokens, "id_collision")
    assert (item["other_child_id"], item["other_child_outside_jurisdiction"]) == (wang["id"], False)
    assert item["child_id"] != wang["id"] and item["hukou_town"] == SHANCHENG_TOWN
    r = await svc.client.get(f"/v1/review-items/{item['id']}", headers=bureau)
    assert r.status_code == 200, r.text
    assert r.json()["other_child_id"] == wang["id"] and WANG.id not in r.text  # ids, never the ID number

    shancheng = Principal(
        subject="reviewer-shancheng",
        roles=frozenset({"bureau"}),
        org=SHANCHENG_TOWN,
        scope=SHANCHENG_TOWN,
        permissions=frozenset({"review:read", "review:decide"}),
    )
    async with svc.ctx.db.transaction() as s:
        [seen] = await service.list_items(
            session=s,
            ctx=svc.ctx,
            principal=shancheng,
            kind="id_collision",
            status=None,
            after=None,
            limit=50,
        )
        one = await service.get_item(session=s, ctx=svc.ctx, principal=shancheng, item_id=item["id"])
    for shown in (seen, one):  # the holder lives in 店子镇: withheld, and said so
        assert (shown["other_child_id"], shown["other_child_outside_jurisdiction"]) == (None, True)
    with pytest.raises(Forbidden):
        async with svc.ctx.db.transaction() as s:
            await service.decide(session=s, ctx=svc.ctx, principal=shancheng, item_id=item["id"], accept=True)
    assert (await _items(svc, tokens, "id_collision"))[0]["status"] == "open"

    r = await svc.client.post(f"/v1/review-items/{item['id']}/accept", headers=bureau)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["other_child_id"]) == ("accepted", wang["id"]) and r.json()[
        "merge_id"
    ]
    assert (await _child(svc, tokens, WANG.id))["merged_records"] == [item["child_id"]]


async def test_an_id_collision_item_opened_before_the_holder_was_stored_still_names_it(start_service, tokens):
    """Items opened before ``other_child_id`` was stored on them are resolved from the row's ID number."""
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))
    await submit(svc, tokens, "civil", "2026-09", csv_body(WANG.row(name="孙悟空", guardian="孙大圣")))
    async with svc.ctx.db.transaction() as s:
        await s.execute(
            update(ReviewItem).where(ReviewItem.kind == "id_collision").values(other_child_id=None)
        )
    wang = await _child(svc, tokens, WANG.id)
    [item] = await _items(svc, tokens, "id_collision")
    assert item["other_child_id"] == wang["id"]
    r = await svc.client.post(
        f"/v1/review-items/{item['id']}/reject", headers=tokens.headers("bureau", BUREAU)
    )
    assert (r.status_code, r.json()["status"], r.json()["other_child_id"]) == (200, "rejected", wang["id"])


async def test_a_decided_conflict_does_not_reopen_when_later_feeds_repeat_its_values(start_service, tokens):
    """The reviewer chose between two values: later feeds asserting either of them again open nothing;
    a value not seen before opens a new item. Likewise for two departments' guardian phones."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU)
    wrong_birth = WANG.row(birth="2016-05-12", category="建档立卡")
    await submit(svc, tokens, "police", "2026-03", csv_body(WANG.row()))
    await submit(svc, tokens, "poverty", "2026-03", csv_body(wrong_birth))
    [item] = await _items(svc, tokens, "conflict")
    wang = await _child(svc, tokens, WANG.id)
    r = await svc.client.post(
        f"/v1/review-items/{item['id']}/accept",
        json={"assertion_id": _assertion(wang, "birth_date", "police")["id"]},
        headers=bureau,
    )
    assert r.status_code == 200, r.text
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))
    await submit(svc, tokens, "poverty", "2026-09", csv_body(wrong_birth))
    assert await _items(svc, tokens, "conflict") == []
    # A third birth date was never decided on: a new item.
    await submit(svc, tokens, "civil", "2026-09", csv_body(WANG.row(birth="2016-06-02", category="留守")))
    [again] = await _items(svc, tokens, "conflict")
    assert again["attribute"] == "birth_date" and again["id"] != item["id"]

    # Two departments' phones: decided once, the same two phones again open nothing.
    await submit(svc, tokens, "police", "2027-03", csv_body(LI.row()))
    await submit(svc, tokens, "civil", "2027-03", csv_body(LI.row(phone="13512345678", category="留守")))
    [phones] = [i for i in await _items(svc, tokens, "conflict") if i["attribute"] == "guardian_phone"]
    li = await _child(svc, tokens, LI.id)
    r = await svc.client.post(f"/v1/review-items/{phones['id']}/reject", headers=bureau)
    assert r.status_code == 200, r.text
    await submit(svc, tokens, "police", "2027-09", csv_body(LI.row()))
    await submit(svc, tokens, "civil", "2027-09", csv_body(LI.row(phone="13512345678", category="留守")))
    assert [i for i in await _items(svc, tokens, "conflict") if i["child_id"] == li["id"]] == []


async def test_a_decided_row_review_item_holds_when_the_same_row_is_fed_again(start_service, tokens):
    """Items opened by a row's review reasons, once decided, are not opened again by the same row in a
    later batch (the same values, whichever department sends them); a changed value opens a new item."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU)
    nowhere = "江苏省苏州市昆山市某路1号"  # matches no town of the district

    def rows(category: str) -> bytes:
        return csv_body(
            WANG.row(birth="2016-05-03", category=category),  # the ID number says 2016-05-02
            LI.row(sex="男", category=category),  # the ID number says female
            WANG.but(seq=32, name="王大明").row(hukou=nowhere, category=category),
        )

    await submit(svc, tokens, "police", "2026-09", rows("常住"))
    kinds = ("id_birth_date_mismatch", "id_sex_mismatch", "address_unmatched")
    decided = {}
    for kind in kinds:
        [item] = await _items(svc, tokens, kind)
        r = await svc.client.post(f"/v1/review-items/{item['id']}/reject", headers=bureau)
        assert r.status_code == 200, r.text
        decided[kind] = item
    await submit(svc, tokens, "police", "2027-03", rows("常住"))
    await submit(svc, tokens, "civil", "2027-03", rows("留守"))
    for kind in kinds:
        assert await _items(svc, tokens, kind) == [], kind
        assert [i["id"] for i in await _items(svc, tokens, kind, "rejected")] == [decided[kind]["id"]]
    # A birth date not decided on: a new item, about the same child.
    await submit(svc, tokens, "police", "2027-09", csv_body(WANG.row(birth="2016-05-04")))
    [again] = await _items(svc, tokens, "id_birth_date_mismatch")
    assert again["child_id"] == decided["id_birth_date_mismatch"]["child_id"]


@pytest.mark.parametrize("decision", ["accept", "reject"])
async def test_a_decided_id_collision_holds_when_the_same_row_is_fed_again(start_service, tokens, decision):
    """The same row colliding with the same child's ID number again is the record the reviewer decided
    about: no new item and no new record. Accepted, its flags reach the holder again; rejected, the
    other child's record keeps them."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU)
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))
    stranger = WANG.row(name="孙悟空", guardian="孙大圣", birth="", sex="", category="留守")
    await submit(svc, tokens, "civil", "2026-09", csv_body(stranger))
    [item] = await _items(svc, tokens, "id_collision")
    r = await svc.client.post(f"/v1/review-items/{item['id']}/{decision}", headers=bureau)
    assert r.status_code == 200, r.text
    batch = await submit(svc, tokens, "civil", "2027-03", csv_body(stranger))
    assert (batch["children_registered"], batch["linked"], batch["review_items"]) == (0, 0, 0)
    assert await _items(svc, tokens, "id_collision") == []
    async with svc.ctx.db.transaction() as s:
        [(child_id, reasons)] = (
            await s.execute(select(FeedRow.child_id, FeedRow.reasons).where(FeedRow.batch_id == batch["id"]))
        ).all()
    assert child_id == item["child_id"] and "id_collision" in reasons.split(",")
    wang = await _child(svc, tokens, WANG.id)
    record = (await svc.client.get(f"/v1/children/{item['child_id']}", headers=bureau)).json()
    holder_of_flag = wang if decision == "accept" else record
    assert "left_behind" in holder_of_flag["categories"]
    flags = [(f["status"], f["valid_from"], f["last_confirmed"]) for f in holder_of_flag["flags"]]
    assert ("active", "2026-09", "2027-03") in flags and {s for s, _, _ in flags} == {"active"}
    assert await _items(svc, tokens, "flag_lapsed") == []


async def test_accepting_a_sex_or_birth_date_mismatch_keeps_the_value_chosen_with_its_source(
    start_service, tokens
):
    """The reviewer names the value the child keeps: it becomes the child's (and the consumers'), with the
    decision as its source in the history and on the item (whose value it agrees with, never the value),
    and the decision is audited. A missing, malformed, out-of-window or other attribute's value is a
    problem (422) and decides nothing."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU)
    batch = await submit(
        svc,
        tokens,
        "police",
        "2026-09",
        csv_body(WANG.row(birth="2016-05-03"), LI.row(sex="男")),  # the ID numbers say 05-02 and female
    )
    wang, li = await _child(svc, tokens, WANG.id), await _child(svc, tokens, LI.id)
    assert (wang["birth_date"], li["sex"]) == ("2016-05-02", "M")
    [sex_item] = await _items(svc, tokens, "id_sex_mismatch")
    [birth_item] = await _items(svc, tokens, "id_birth_date_mismatch")
    sex_url, birth_url = (f"/v1/review-items/{i['id']}/accept" for i in (sex_item, birth_item))

    r = await svc.client.post(sex_url, headers=bureau)
    assert (r.status_code, r.json()["code"]) == (422, "review_choice_required")
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == ["sex"]
    r = await svc.client.post(sex_url, json={"sex": "X"}, headers=bureau)
    assert (r.status_code, r.json()["code"], r.json()["errors"][0]["field"]) == (
        422,
        "validation_failed",
        "sex",
    )
    r = await svc.client.post(sex_url, json={"birth_date": "2016-05-03"}, headers=bureau)
    assert (r.status_code, r.json()["code"]) == (422, "review_choice_required")
    r = await svc.client.post(sex_url, json={"sex": "F", "birth_date": "2016-05-03"}, headers=bureau)
    assert (r.status_code, r.json()["code"]) == (422, "review_value_invalid")
    assert r.json()["errors"][0] == {
        "field": "birth_date",
        "code": "not_for_this_item",
        "message": "not a value of id_sex_mismatch",
    }
    r = await svc.client.post(birth_url, json={"birth_date": "2006-05-03"}, headers=bureau)
    assert (r.status_code, r.json()["code"], r.json()["errors"][0]["code"]) == (
        422,
        "review_value_invalid",
        "age_out_of_window",
    )
    r = await svc.client.post(birth_url, json={"birth_date": "2016-02-30"}, headers=bureau)
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")
    assert {i["status"] for i in await _items(svc, tokens, "id_sex_mismatch")} == {"open"}
    assert (await _child(svc, tokens, LI.id))["sex"] == "M"  # nothing decided by those

    r = await svc.client.post(sex_url, json={"sex": "F"}, headers=bureau)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["evidence"]["chosen"]) == (
        "accepted",
        {
            "attribute": "sex",
            "source": "review",
            "agrees_with": "id_number",
            "changed": True,
            "batch_id": batch["id"],
            "department": "police",
        },
    )
    r = await svc.client.post(birth_url, json={"birth_date": "2016-05-03"}, headers=bureau)
    assert r.status_code == 200, r.text
    assert r.json()["evidence"]["chosen"]["agrees_with"] == "row"

    wang, li = await _child(svc, tokens, WANG.id), await _child(svc, tokens, LI.id)
    assert (wang["birth_date"], li["sex"]) == ("2016-05-03", "F")
    assert wang["needs_review"] is False and li["needs_review"] is False
    [h] = [h for h in li["history"] if h["kind"] == "sex_resolved"]
    assert (h["batch_id"], h["reference"], h["detail"]["decided_by"], h["detail"]["review_item"]) == (
        batch["id"],
        str(sex_item["id"]),
        f"test-bureau-{BUREAU}",
        sex_item["id"],
    )
    [h] = [h for h in wang["history"] if h["kind"] == "birth_date_resolved"]
    assert h["detail"]["source"] == "review" and "2016-05-03" not in json.dumps(h["detail"])
    updated = await outbox_events(svc, "child.updated.v1")
    assert [e["data"]["sex"] for e in updated if e["subject"] == li["id"]][-1] == "F"
    assert [e["data"]["birth_date"] for e in updated if e["subject"] == wang["id"]][-1] == "2016-05-03"
    table = svc.spec.tables.audit
    async with svc.ctx.db.transaction() as s:
        decided = (
            await s.execute(select(table.c.resource_ids, table.c.detail).where(table.c.action == "decide"))
        ).all()
    assert sorted(decided) == sorted(
        [
            (li["id"], f"review_item={sex_item['id']} kind=id_sex_mismatch attribute=sex"),
            (wang["id"], f"review_item={birth_item['id']} kind=id_birth_date_mismatch attribute=birth_date"),
        ]
    )
