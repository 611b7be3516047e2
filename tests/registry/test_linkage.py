"""Record linkage of rows without a usable ID number: automatic links, the review queue, undo; accuracy."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict

import pytest
from sqlalchemy import text

from tests.registry.conftest import BUREAU, csv_body, outbox_events, submit
from tests.registry.people import LI, WANG, ZHAO, Kid


async def _child(svc, tokens, id_number: str) -> dict:
    r = await svc.client.post(
        "/v1/children/lookup", json={"id_number": id_number}, headers=tokens.headers("bureau", BUREAU)
    )
    return r.json()


async def test_a_confident_match_links_automatically_with_evidence_and_undoes(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), ZHAO.row()))
    batch = await submit(svc, tokens, "poverty", "2026-09", csv_body(WANG.row(id="", category="建档立卡")))
    assert batch["linked"] == 1 and batch["children_registered"] == 0
    wang = await _child(svc, tokens, WANG.id)
    assert "registered_poor" in wang["categories"] and len(wang["merged_records"]) == 1
    bureau = tokens.headers("bureau", BUREAU)
    merges = (await svc.client.get("/v1/merges", params={"child_id": wang["id"]}, headers=bureau)).json()[
        "items"
    ]
    assert [m["reason"] for m in merges] == ["linkage_auto"]
    async with svc.ctx.db.transaction() as s:
        evidence = (await s.execute(text("SELECT evidence FROM child_merges"))).scalar_one()
    assert '"name": "exact"' in evidence and '"birth_date": "exact"' in evidence
    undo = await svc.client.post(f"/v1/merges/{merges[0]['id']}/undo", headers=bureau)
    assert undo.status_code == 200 and undo.json()["undone_at"]
    wang = await _child(svc, tokens, WANG.id)
    assert wang["merged_records"] == [] and "registered_poor" not in wang["categories"]
    other = (await svc.client.get(f"/v1/children/{merges[0]['merged_id']}", headers=bureau)).json()
    assert (other["status"], other["categories"]) == ("active", ["registered_poor"])
    assert (await svc.client.post(f"/v1/merges/{merges[0]['id']}/undo", headers=bureau)).json()[
        "code"
    ] == "merge_already_undone"


async def test_uncertain_pairs_go_to_review_accept_and_reject(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), ZHAO.row()))
    # Homophone name and a slipped birth day: plausible, not certain. A stranger with ZHAO's birth date: no link.
    rows = [
        WANG.row(id="", name="王晓明", birth="2016-05-12", category="建档立卡"),
        ZHAO.row(id="3704062015", name="赵紫涵", birth="2015-07-02", category="建档立卡"),
        ZHAO.row(id="", name="孙悟空", guardian="孙大圣", category="建档立卡"),
    ]
    batch = await submit(svc, tokens, "poverty", "2026-09", csv_body(*rows))
    assert batch["linked"] == 0
    bureau = tokens.headers("bureau", BUREAU)
    items = (
        await svc.client.get("/v1/review-items", params={"kind": "link_candidate"}, headers=bureau)
    ).json()["items"]
    assert len(items) == 2
    wang, zhao = await _child(svc, tokens, WANG.id), await _child(svc, tokens, ZHAO.id)
    by_target = {i["other_child_id"]: i for i in items}
    assert set(by_target) == {wang["id"], zhao["id"]}
    assert by_target[wang["id"]]["evidence"]["name"] == "homophone"
    assert (
        await svc.client.post(
            f"/v1/review-items/{by_target[wang['id']]['id']}/accept",
            headers=tokens.headers("inspector", "370406D07"),
        )
    ).status_code == 403
    accepted = await svc.client.post(f"/v1/review-items/{by_target[wang['id']]['id']}/accept", headers=bureau)
    assert accepted.status_code == 200 and accepted.json()["merge_id"]
    rejected = await svc.client.post(f"/v1/review-items/{by_target[zhao['id']]['id']}/reject", headers=bureau)
    assert rejected.json()["status"] == "rejected"
    assert (
        await svc.client.post(f"/v1/review-items/{by_target[zhao['id']]['id']}/accept", headers=bureau)
    ).json()["code"] == "review_already_decided"
    wang = await _child(svc, tokens, WANG.id)
    assert "registered_poor" in wang["categories"] and len(wang["merged_records"]) == 1
    zhao = await _child(svc, tokens, ZHAO.id)
    assert "registered_poor" not in zhao["categories"]
    await svc.client.post(f"/v1/merges/{accepted.json()['merge_id']}/undo", headers=bureau)
    items = (
        await svc.client.get(
            "/v1/review-items", params={"kind": "link_candidate", "status": "undone"}, headers=bureau
        )
    ).json()["items"]
    assert [i["id"] for i in items] == [by_target[wang["id"]]["id"]]


@pytest.mark.parametrize("name", ["张子寒", "张梓涵"], ids=["homophone_of_both", "exact_name_of_one"])
async def test_a_row_that_matches_twins_with_id_numbers_equally_goes_to_review(start_service, tokens, name):
    """The police feed twins (same birth date, village and guardian; 梓涵 and 梓晗 read alike) with their
    ID numbers. Civil affairs sends one of them without an ID number: the two candidates score within
    MARGIN of each other, and two records with different ID numbers are two children however alike they
    score, so the row is queued for review (a link candidate), never linked to either twin."""
    svc = await start_service("registry")
    twin = Kid("张梓涵", dt.date(2016, 4, 1), False, 21, guardian="张军", phone="13800000009")
    other = twin.but(name="张梓晗", seq=22)
    await submit(svc, tokens, "police", "2026-09", csv_body(twin.row(), other.row()))
    batch = await submit(
        svc, tokens, "civil", "2026-09", csv_body(twin.row(id="", name=name, category="孤儿"))
    )
    assert (batch["children_registered"], batch["linked"]) == (1, 0)
    bureau = tokens.headers("bureau", BUREAU)
    assert (await svc.client.get("/v1/merges", headers=bureau)).json()["items"] == []
    twins = {(await _child(svc, tokens, k.id))["id"]: k for k in (twin, other)}
    for child_id in twins:
        shown = (await svc.client.get(f"/v1/children/{child_id}", headers=bureau)).json()
        assert shown["categories"] == ["resident"] and shown["merged_records"] == []
    [item] = (
        await svc.client.get("/v1/review-items", params={"kind": "link_candidate"}, headers=bureau)
    ).json()["items"]
    assert item["other_child_id"] in twins and item["child_id"] not in twins
    row_record = (await svc.client.get(f"/v1/children/{item['child_id']}", headers=bureau)).json()
    assert row_record["categories"] == ["orphan"] and row_record["status"] == "active"


async def test_an_undone_link_holds_for_the_same_row_in_a_later_period(start_service, tokens):
    """Civil affairs' row for ZHAO without an ID number is linked to the police's record, and a reviewer
    undoes the link. Civil affairs' next period repeats the row (the same name, sex, birth date, village
    and guardian): the reviewer's separation holds, so it is not linked to the police's record again but to
    the record the undo gave back (civil affairs' own), whose orphan flag it confirms (no lapse, valid_from
    kept). A row describing the child differently is new to decide on."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU, purpose="data quality review")
    row = ZHAO.row(id="", category="孤儿")
    await submit(svc, tokens, "police", "2026-03", csv_body(ZHAO.row()))
    assert (await submit(svc, tokens, "civil", "2026-03", csv_body(row)))["linked"] == 1
    police = await _child(svc, tokens, ZHAO.id)
    [merge] = (await svc.client.get("/v1/merges", headers=bureau)).json()["items"]
    assert (await svc.client.post(f"/v1/merges/{merge['id']}/undo", headers=bureau)).status_code == 200
    separated = merge["merged_id"]

    again = await submit(svc, tokens, "civil", "2026-09", csv_body(row))
    assert again["linked"] == 1
    merges = (await svc.client.get("/v1/merges", headers=bureau)).json()["items"]
    active = [(m["survivor_id"], m["reason"]) for m in merges if m["undone_at"] is None]
    assert active == [(separated, "linkage_auto")]
    police = (await svc.client.get(f"/v1/children/{police['id']}", headers=bureau)).json()
    assert (police["categories"], police["merged_records"]) == (["resident"], [])
    civil = (await svc.client.get(f"/v1/children/{separated}", headers=bureau)).json()
    assert (civil["status"], civil["categories"], civil["needs_review"]) == ("active", ["orphan"], False)
    assert [(f["status"], f["valid_from"], f["last_confirmed"]) for f in civil["flags"]] == [
        ("active", "2026-03", "2026-09")
    ]
    r = await svc.client.get("/v1/review-items", params={"kind": "flag_lapsed"}, headers=bureau)
    assert r.json()["items"] == []
    # The police's record is not even a candidate of that row any more: no item about the pair either.
    r = await svc.client.get("/v1/review-items", params={"kind": "link_candidate"}, headers=bureau)
    assert r.json()["items"] == []


async def test_linkage_on_the_generated_district_is_precise(start_service, tokens, district):
    """All eight generated feeds in: no merged record mixes two people; nearly every person is one record."""
    svc = await start_service("registry")
    for period in ("2026-03", "2026-09"):
        for dept in ("police", "poverty", "dpf", "civil"):
            await submit(svc, tokens, dept, period, (district / f"feeds/{period}/{dept}.csv").read_bytes())
    truth = {}
    with (district / "truth/feed_rows.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            truth[r["period"], r["dept"], int(r["row_number"])] = r["person_id"]
    async with svc.ctx.db.transaction() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT b.period, b.department, r.row_number, COALESCE(c.merged_into, c.id) FROM feed_rows r "
                    "JOIN feed_batches b ON b.id = r.batch_id JOIN children c ON c.id = r.child_id WHERE r.outcome = 'accepted'"
                )
            )
        ).all()
    people_of_record, records_of_person = defaultdict(set), defaultdict(set)
    for period, dept, number, record in rows:
        person = truth[period, dept, number]
        people_of_record[record].add(person)
        records_of_person[person].add(record)
    mixed = [r for r, p in people_of_record.items() if len(p) > 1]
    split = [p for p, r in records_of_person.items() if len(r) > 1]
    assert len(rows) > 700
    assert mixed == []
    assert len(split) / len(records_of_person) < 0.03


async def test_an_id_number_of_a_different_person_is_a_collision_for_review(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row()))
    stranger = WANG.row(name="孙悟空", guardian="孙大圣", birth="", sex="", category="留守")
    batch = await submit(svc, tokens, "civil", "2026-09", csv_body(stranger))
    assert (batch["accepted"], batch["children_registered"], batch["linked"]) == (1, 1, 0)
    wang = await _child(svc, tokens, WANG.id)
    assert "left_behind" not in wang["categories"] and wang["merged_records"] == []
    bureau = tokens.headers("bureau", BUREAU)
    items = (
        await svc.client.get("/v1/review-items", params={"kind": "id_collision"}, headers=bureau)
    ).json()["items"]
    assert len(items) == 1 and items[0]["child_id"] != wang["id"]
    report = await svc.client.get(f"/v1/feeds/batches/{batch['id']}/errors", headers=bureau)
    assert "id_collision" in report.content.decode("utf-8-sig")
    # The submitting department sees the row it sent, like any other row with reason codes.
    own = await svc.client.get(
        f"/v1/feeds/batches/{batch['id']}/errors", headers=tokens.headers("dept_civil", "370406D05")
    )
    [header, line] = list(csv.reader(io.StringIO(own.content.decode("utf-8-sig"))))
    cells = dict(zip(header[4:], line[4:], strict=True))
    assert line[2] == "id_collision"
    assert cells == {
        "姓名": "孙悟空",
        "身份证号": WANG.id,
        "性别": "男",  # rebuilt from the staged row: the sex the ID number gave (the cell was empty)
        "出生日期": "",
        "户籍地址": WANG.hukou,
        "现住址": WANG.hukou,
        "监护人姓名": "孙大圣",
        "监护人电话": WANG.phone,
        "类别": "留守",
        "残疾类别": "",
        "残疾等级": "",
    }
    # The bureau's copy of it is masked.
    [_, masked] = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert masked[4:6] == ["孙**", WANG.id[:6] + "********" + WANG.id[-4:]]


async def test_an_earlier_record_a_feed_links_away_is_announced_as_a_duplicate(start_service, tokens):
    """Civil affairs registers a child without an ID number (announced); police's feed brings the same child
    with one, and linkage merges the earlier record into the new one: the earlier record's consumers learn
    that it is a duplicate (ChildStatusChanged, merged_into) and the survivor carries its flags."""
    svc = await start_service("registry")
    await submit(svc, tokens, "civil", "2026-03", csv_body(LI.row(id="", category="留守")))
    [registered] = await outbox_events(svc, "child.registered.v1")
    earlier = registered["subject"]
    batch = await submit(svc, tokens, "police", "2026-09", csv_body(LI.row()))
    assert batch["linked"] == 1
    li = await _child(svc, tokens, LI.id)
    assert li["merged_records"] == [earlier] and set(li["categories"]) == {"left_behind", "resident"}
    [changed] = [e for e in await outbox_events(svc, "child.status_changed.v1") if e["subject"] == earlier]
    assert changed["sequence"] == registered["sequence"] + 1
    assert (changed["data"]["status"], changed["data"]["previous_status"]) == ("duplicate", "active")
    assert changed["data"]["merged_into"] == li["id"] and changed["data"]["child_id"] == earlier
    # Its snapshot follows (status duplicate, its flags counted for the survivor), after the status change.
    updated = [e for e in await outbox_events(svc, "child.updated.v1") if e["subject"] == earlier]
    assert [(e["sequence"], e["data"]["status"]) for e in updated] == [(changed["sequence"] + 1, "duplicate")]
    survivor = [e for e in await outbox_events(svc, "child.registered.v1") if e["subject"] == li["id"]]
    assert set(survivor[0]["data"]["categories"]) == {"left_behind", "resident"}


async def test_a_child_without_an_id_number_fed_again_keeps_its_flags_on_the_record_linked_to(
    start_service, tokens
):
    """Civil affairs feeds the same child without an ID number in two periods: the second row's record is
    linked to the first, and the flags it asserts are confirmed on that record (no false lapse, valid_from
    kept)."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU, purpose="data quality review")
    row = LI.row(id="", category="留守、孤儿")
    await submit(svc, tokens, "civil", "2026-03", csv_body(row))
    [registered] = await outbox_events(svc, "child.registered.v1")
    first = registered["subject"]
    again = await submit(svc, tokens, "civil", "2026-09", csv_body(row))
    assert again["linked"] == 1
    r = await svc.client.get("/v1/review-items", params={"kind": "flag_lapsed"}, headers=bureau)
    assert r.json()["items"] == []
    child = (await svc.client.get(f"/v1/children/{first}", headers=bureau)).json()
    assert child["status"] == "active" and len(child["merged_records"]) == 1
    flags = {f["category"]: (f["status"], f["valid_from"], f["last_confirmed"]) for f in child["flags"]}
    assert flags == {
        "left_behind": ("active", "2026-03", "2026-09"),
        "orphan": ("active", "2026-03", "2026-09"),
    }
    assert set(child["categories"]) == {"left_behind", "orphan"}
    # A third period without 留守: that flag lapses (once, on the record), the other stays.
    await submit(svc, tokens, "civil", "2027-03", csv_body(LI.row(id="", category="孤儿")))
    r = await svc.client.get("/v1/review-items", params={"kind": "flag_lapsed"}, headers=bureau)
    assert [(i["child_id"], i["attribute"]) for i in r.json()["items"]] == [(first, "left_behind")]
    # Undoing the 2026-09 link gives each record the flags its own rows assert, period by period: the
    # first record was not fed in 2026-09 (its flags lapse there; 孤儿 is back from 2027-03, fed through the
    # 2027-03 record still linked to it); the split record was fed in 2026-09 only.
    merges = (await svc.client.get("/v1/merges", params={"child_id": first}, headers=bureau)).json()["items"]
    split = next(m for m in merges if m["merged_id"] in child["merged_records"])
    r = await svc.client.post(f"/v1/merges/{split['id']}/undo", headers=bureau)
    assert r.status_code == 200, r.text

    async def flags_of(child_id: str) -> dict:
        shown = (await svc.client.get(f"/v1/children/{child_id}", headers=bureau)).json()
        return {f["category"]: (f["status"], f["valid_from"], f["lapsed_period"]) for f in shown["flags"]}

    assert await flags_of(first) == {
        "left_behind": ("lapsed", "2026-03", "2026-09"),
        "orphan": ("active", "2027-03", None),
    }
    assert await flags_of(split["merged_id"]) == {
        "left_behind": ("lapsed", "2026-09", "2027-03"),
        "orphan": ("lapsed", "2026-09", "2027-03"),
    }
    r = await svc.client.get("/v1/review-items", params={"kind": "flag_lapsed"}, headers=bureau)
    assert {(i["child_id"], i["attribute"]) for i in r.json()["items"]} == {
        (first, "left_behind"),
        (split["merged_id"], "left_behind"),
        (split["merged_id"], "orphan"),
    }


@pytest.mark.parametrize("with_id", [False, True], ids=["again_without_id", "now_with_id"])
async def test_the_flag_of_an_older_record_merged_away_is_confirmed_by_its_departments_next_feed(
    start_service, tokens, with_id
):
    """Civil affairs registers LI without an ID number (left-behind, 2026-03); the police feed LI with it
    (2026-09) and linkage merges civil affairs' older record into the police's. Civil affairs' next row for
    LI (without or with the ID number) reaches the police's record: it confirms the flag civil affairs' own
    record carried over as well as the one on the record that remains, so no lapse of the merged record's
    flag is listed and its valid_from is kept. A later feed without the category lapses it once."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU, purpose="data quality review")
    await submit(svc, tokens, "civil", "2026-03", csv_body(LI.row(id="", category="留守")))
    [registered] = await outbox_events(svc, "child.registered.v1")
    earlier = registered["subject"]
    assert (await submit(svc, tokens, "police", "2026-09", csv_body(LI.row())))["linked"] == 1
    li = await _child(svc, tokens, LI.id)
    assert li["merged_records"] == [earlier]

    row = LI.row(category="留守") if with_id else LI.row(id="", category="留守")
    await submit(svc, tokens, "civil", "2027-03", csv_body(row))
    r = await svc.client.get("/v1/review-items", params={"kind": "flag_lapsed"}, headers=bureau)
    assert r.json()["items"] == []
    li = (await svc.client.get(f"/v1/children/{li['id']}", headers=bureau)).json()
    civil = sorted(
        (f["status"], f["valid_from"], f["last_confirmed"]) for f in li["flags"] if f["department"] == "civil"
    )
    assert ("active", "2026-03", "2027-03") in civil and {s for s, _, _ in civil} == {"active"}
    assert set(li["categories"]) == {"left_behind", "resident"} and li["needs_review"] is False

    # Civil affairs leaves 留守 out: it lapses, one item about the record that remains; ending it ends
    # civil affairs' left-behind flags of both records.
    await submit(svc, tokens, "civil", "2027-09", csv_body(LI.row(category="孤儿")))
    r = await svc.client.get("/v1/review-items", params={"kind": "flag_lapsed"}, headers=bureau)
    [item] = r.json()["items"]
    assert (item["child_id"], item["attribute"]) == (li["id"], "left_behind")
    ended = await svc.client.post(f"/v1/review-items/{item['id']}/accept", headers=bureau)
    assert ended.json()["evidence"]["flag"]["effect"] == "flag_ended"
    li = (await svc.client.get(f"/v1/children/{li['id']}", headers=bureau)).json()
    assert {f["status"] for f in li["flags"] if f["category"] == "left_behind"} == {"ended"}
    assert set(li["categories"]) == {"orphan", "resident"}


async def test_a_chain_of_links_names_the_record_that_remains_and_undoes_step_by_step(start_service, tokens):
    """Civil affairs feeds LI without an ID number twice (the second record is linked to the first), then the
    police with it (the first is linked to the police's record): both earlier records name the police's
    record as the one that remains, and civil affairs' flag is confirmed there. Undoing the police link
    gives the first record back its own linked record, and each record the flags its rows assert."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU, purpose="data quality review")
    row = LI.row(id="", category="留守")
    await submit(svc, tokens, "civil", "2026-03", csv_body(row))
    [registered] = await outbox_events(svc, "child.registered.v1")
    first = registered["subject"]
    assert (await submit(svc, tokens, "civil", "2026-09", csv_body(row)))["linked"] == 1
    [second] = (await svc.client.get(f"/v1/children/{first}", headers=bureau)).json()["merged_records"]
    assert (await submit(svc, tokens, "police", "2027-03", csv_body(LI.row())))["linked"] == 1
    li = await _child(svc, tokens, LI.id)
    assert set(li["merged_records"]) == {first, second}
    for record in (first, second):
        shown = (await svc.client.get(f"/v1/children/{record}", headers=bureau)).json()
        assert (shown["status"], shown["merged_into"]) == ("duplicate", li["id"])
    await submit(svc, tokens, "civil", "2027-09", csv_body(row))
    r = await svc.client.get("/v1/review-items", params={"kind": "flag_lapsed"}, headers=bureau)
    assert r.json()["items"] == []
    li = await _child(svc, tokens, LI.id)
    assert set(li["categories"]) == {"left_behind", "resident"} and len(li["merged_records"]) == 3

    merges = (await svc.client.get("/v1/merges", params={"child_id": li["id"]}, headers=bureau)).json()
    police_link = next(m for m in merges["items"] if m["merged_id"] == first)
    r = await svc.client.post(f"/v1/merges/{police_link['id']}/undo", headers=bureau)
    assert r.status_code == 200, r.text
    restored = (await svc.client.get(f"/v1/children/{first}", headers=bureau)).json()
    assert (restored["status"], restored["merged_records"]) == ("active", [second])
    # The first record's rows are 2026-03's and 2026-09's: civil affairs' 2027-09 row is the police
    # record's (linked to it), so for the first record alone left-behind lapsed in 2027-09.
    flags = [(f["status"], f["valid_from"], f["lapsed_period"]) for f in restored["flags"]]
    assert (restored["categories"], flags) == ([], [("lapsed", "2026-03", "2027-09")])
    r = await svc.client.get("/v1/review-items", params={"kind": "flag_lapsed"}, headers=bureau)
    assert [(i["child_id"], i["attribute"]) for i in r.json()["items"]] == [(first, "left_behind")]
    li = await _child(svc, tokens, LI.id)
    assert second not in li["merged_records"] and first not in li["merged_records"]
    assert set(li["categories"]) == {"left_behind", "resident"}


async def test_a_record_merged_into_one_a_feed_links_away_is_announced_with_its_new_survivor(
    start_service, tokens
):
    """Civil affairs registers LI without an ID number, and the police declare ZHAO's record a duplicate of
    it; the police's next feed brings LI with the ID number and linkage merges civil affairs' record into
    the police's. ZHAO's record now names the police's record as the one that remains, and is announced:
    ChildStatusChanged, duplicate to duplicate, merged_into the police's record, at its next version."""
    svc = await start_service("registry")
    await submit(svc, tokens, "civil", "2026-03", csv_body(LI.row(id="", category="留守")))
    await submit(svc, tokens, "police", "2026-03", csv_body(ZHAO.row()))
    zhao = (await _child(svc, tokens, ZHAO.id))["id"]
    [civil] = [e["subject"] for e in await outbox_events(svc, "child.registered.v1") if e["subject"] != zhao]
    r = await svc.client.post(
        f"/v1/children/{zhao}/hukou-corrections",
        json={"kind": "duplicate", "effective_date": "2026-04-01", "duplicate_of": civil},
        headers=tokens.headers("dept_police", "370406D02"),
    )
    assert r.status_code == 201, r.text
    held = max(e["sequence"] for e in await outbox_events(svc) if e["subject"] == zhao)
    assert (await submit(svc, tokens, "police", "2026-09", csv_body(LI.row())))["linked"] == 1
    li = await _child(svc, tokens, LI.id)
    shown = (await svc.client.get(f"/v1/children/{zhao}", headers=tokens.headers("bureau", BUREAU))).json()
    assert (shown["status"], shown["merged_into"]) == ("duplicate", li["id"])
    later = [e for e in await outbox_events(svc) if e["subject"] == zhao and e["sequence"] > held]
    assert [(e["type"].split(".")[-2], e["sequence"]) for e in later] == [("status_changed", held + 1)]
    data = later[0]["data"]
    assert (data["status"], data["previous_status"], data["merged_into"]) == (
        "duplicate",
        "duplicate",
        li["id"],
    )
    # civil affairs' record itself is announced as the feed's link of it was before.
    [linked] = [e for e in await outbox_events(svc, "child.status_changed.v1") if e["subject"] == civil]
    assert (linked["data"]["previous_status"], linked["data"]["merged_into"]) == ("active", li["id"])
