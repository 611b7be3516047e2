"""Merging feeds into one child per person: provenance, conflicts, flags and their lapse, events."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import text

from registry.feeds import ingest
from tests.registry.conftest import (
    BUREAU,
    csv_body,
    dept_headers,
    outbox_events,
    stream_events,
    submit,
    wait_job,
)
from tests.registry.people import LI, WANG, ZHAO


async def _detail(svc, tokens, child_id: str) -> dict:
    r = await svc.client.get(
        f"/v1/children/{child_id}", headers=tokens.headers("bureau", BUREAU, purpose="data quality review")
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _lookup(svc, tokens, id_number: str) -> dict:
    r = await svc.client.post(
        "/v1/children/lookup",
        json={"id_number": id_number},
        headers=tokens.headers("bureau", BUREAU, purpose="data quality review"),
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_provenance_and_conflicts_are_kept_never_overwritten(start_service, tokens):
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-03", csv_body(WANG.row()))
    # The poverty office writes a homophone of the name and a wrong birth date for the same ID number.
    batch = await submit(
        svc,
        tokens,
        "poverty",
        "2026-09",
        csv_body(WANG.row(name="王晓明", birth="2016-05-12", category="建档立卡")),
    )
    assert batch["children_registered"] == 0 and batch["children_updated"] == 1
    child = await _lookup(svc, tokens, WANG.id)
    assert child["name"] == "王小明" and child["birth_date"] == "2016-05-02"  # first value kept
    assert child["needs_review"] is True
    names = {
        (a["department"], a["value"], a["first_period"])
        for a in child["provenance"]
        if a["attribute"] == "name"
    }
    assert names == {("police", "王小明", "2026-03"), ("poverty", "王晓明", "2026-09")}
    births = {a["value"] for a in child["provenance"] if a["attribute"] == "birth_date"}
    assert births == {"2016-05-02", "2016-05-12"}
    assert child["sources"] == ["police", "poverty"]
    assert set(child["categories"]) == {"resident", "registered_poor"}
    r = await svc.client.get(
        "/v1/review-items", params={"kind": "conflict"}, headers=tokens.headers("bureau", BUREAU)
    )
    conflicts = {(i["child_id"], i["attribute"]) for i in r.json()["items"]}
    assert conflicts == {(child["id"], "name"), (child["id"], "birth_date")}
    # The same disagreement again opens no second item.
    await submit(
        svc,
        tokens,
        "poverty",
        "2026-03",
        csv_body(WANG.row(name="王晓明", birth="2016-05-12", category="建档立卡")),
    )
    r = await svc.client.get(
        "/v1/review-items", params={"kind": "conflict"}, headers=tokens.headers("bureau", BUREAU)
    )
    assert len(r.json()["items"]) == 2


async def test_flags_carry_valid_from_last_confirmed_and_lapse_for_review(start_service, tokens):
    svc = await start_service("registry")
    await submit(
        svc, tokens, "civil", "2026-03", csv_body(LI.row(category="低保"), ZHAO.row(category="留守、孤儿"))
    )
    await submit(
        svc, tokens, "civil", "2026-09", csv_body(LI.row(category="低保"), ZHAO.row(category="孤儿"))
    )
    li = await _lookup(svc, tokens, LI.id)
    flag = next(f for f in li["flags"] if f["category"] == "low_income")
    assert (flag["valid_from"], flag["last_confirmed"], flag["status"]) == ("2026-03", "2026-09", "active")
    zhao = await _lookup(svc, tokens, ZHAO.id)
    left = next(f for f in zhao["flags"] if f["category"] == "left_behind")
    assert (left["status"], left["lapsed_period"]) == ("lapsed", "2026-09")
    assert zhao["categories"] == ["orphan"]
    r = await svc.client.get(
        "/v1/review-items", params={"kind": "flag_lapsed"}, headers=tokens.headers("bureau", BUREAU)
    )
    assert [(i["child_id"], i["attribute"]) for i in r.json()["items"]] == [(zhao["id"], "left_behind")]
    # Another department's feed never lapses civil affairs' flags.
    await submit(svc, tokens, "police", "2027-03", csv_body(WANG.row()))
    zhao = await _lookup(svc, tokens, ZHAO.id)
    assert next(f for f in zhao["flags"] if f["category"] == "orphan")["status"] == "active"
    updated = [e for e in await outbox_events(svc, "child.updated.v1") if e["subject"] == zhao["id"]]
    assert updated and updated[-1]["data"]["categories"] == ["orphan"]


async def _submit_part(svc, tokens, department: str, period: str, body: bytes) -> dict:
    """A batch that is one part of the department's delivery for the period, more parts to follow."""
    headers = dept_headers(tokens, department)
    r = await svc.client.post(
        f"/v1/feeds/{department}/{period}/batches",
        content=body,
        params={"delivery_complete": "false"},
        headers=headers | {"Content-Type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    assert (await wait_job(svc.client, headers, r.json()["job_id"]))["status"] == "succeeded"
    return (await svc.client.get(f"/v1/feeds/batches/{r.json()['id']}", headers=headers)).json()


async def _open_lapses(svc, tokens) -> list[tuple[str, str]]:
    r = await svc.client.get(
        "/v1/review-items", params={"kind": "flag_lapsed"}, headers=tokens.headers("bureau", BUREAU)
    )
    return [(i["child_id"], i["attribute"]) for i in r.json()["items"]]


async def _civil_delivery(svc, tokens) -> tuple[int, bool]:
    """Civil affairs' 2026-09 in the feed calendar: batches, and whether the delivery is complete."""
    r = await svc.client.get(
        "/v1/feeds/calendar", params={"year": 2026}, headers=tokens.headers("bureau", BUREAU)
    )
    entry = next(e for e in r.json() if (e["department"], e["period"]) == ("civil", "2026-09"))
    return entry["batches"], entry["complete"]


async def test_a_delivery_in_parts_lapses_only_what_no_part_of_the_period_asserts(start_service, tokens):
    """Civil affairs delivers 2026-09 in two batches, the first declared one part of the delivery
    (``delivery_complete=false``): it lapses nothing, so ZHAO's orphan flag, which the second part
    confirms, never drops out (no ChildUpdated without it, no item) and keeps its valid_from. The last
    part (complete, the default) lapses what none of the period's parts asserted; so does the next
    period's complete delivery."""
    svc = await start_service("registry")
    await submit(
        svc, tokens, "civil", "2026-03", csv_body(LI.row(category="低保"), ZHAO.row(category="孤儿、留守"))
    )
    part = await _submit_part(svc, tokens, "civil", "2026-09", csv_body(LI.row(category="低保")))
    assert part["delivery_complete"] is False
    assert await _civil_delivery(svc, tokens) == (1, False)
    zhao = await _lookup(svc, tokens, ZHAO.id)
    assert sorted(zhao["categories"]) == ["left_behind", "orphan"]
    assert {f["status"] for f in zhao["flags"]} == {"active"} and await _open_lapses(svc, tokens) == []
    last = await submit(svc, tokens, "civil", "2026-09", csv_body(ZHAO.row(category="孤儿")))
    assert last["delivery_complete"] is True
    assert await _civil_delivery(svc, tokens) == (2, True)
    zhao = await _lookup(svc, tokens, ZHAO.id)
    flags = {f["category"]: (f["status"], f["valid_from"], f["last_confirmed"]) for f in zhao["flags"]}
    assert flags == {
        "orphan": ("active", "2026-03", "2026-09"),
        "left_behind": ("lapsed", "2026-03", "2026-03"),
    }
    li = await _lookup(svc, tokens, LI.id)
    assert [(f["status"], f["valid_from"], f["last_confirmed"]) for f in li["flags"]] == [
        ("active", "2026-03", "2026-09")
    ]
    assert await _open_lapses(svc, tokens) == [(zhao["id"], "left_behind")]
    updated = [e["data"]["categories"] for e in await outbox_events(svc, "child.updated.v1")]
    assert all("orphan" in categories for categories in updated), updated
    # The next period, complete in one batch without ZHAO's orphan flag: it lapses.
    await submit(svc, tokens, "civil", "2027-03", csv_body(LI.row(category="低保")))
    zhao = await _lookup(svc, tokens, ZHAO.id)
    assert next(f for f in zhao["flags"] if f["category"] == "orphan")["lapsed_period"] == "2027-03"


async def test_a_flag_a_later_batch_of_the_same_period_asserts_again_is_reinstated(start_service, tokens):
    """A department that sends two batches of one period, each declared complete: the first lapses ZHAO's
    orphan flag, the second asserts it again. The flag is active again with its original valid_from, and
    its flag_lapsed item is closed (``undone``, re-confirmed by that batch), the child no longer needing
    review. A flag asserted again only in a later period starts anew (it was not asserted in between)."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU)
    await submit(
        svc, tokens, "civil", "2026-03", csv_body(LI.row(category="低保"), ZHAO.row(category="孤儿"))
    )
    await submit(svc, tokens, "civil", "2026-09", csv_body(LI.row(category="低保")))
    zhao = await _lookup(svc, tokens, ZHAO.id)
    assert zhao["categories"] == [] and zhao["needs_review"] is True
    [item] = (
        await svc.client.get("/v1/review-items", params={"kind": "flag_lapsed"}, headers=bureau)
    ).json()["items"]
    again = await submit(svc, tokens, "civil", "2026-09", csv_body(ZHAO.row(category="孤儿")))
    zhao = await _lookup(svc, tokens, ZHAO.id)
    assert [
        (f["status"], f["valid_from"], f["last_confirmed"], f["lapsed_period"]) for f in zhao["flags"]
    ] == [("active", "2026-03", "2026-09", None)]
    assert zhao["categories"] == ["orphan"] and zhao["needs_review"] is False
    assert await _open_lapses(svc, tokens) == []
    closed = (await svc.client.get(f"/v1/review-items/{item['id']}", headers=bureau)).json()
    assert closed["status"] == "undone" and closed["decided_at"]
    assert closed["evidence"]["flag"] == {"effect": "flag_reconfirmed", "batch_id": again["id"]}
    # A lapse that holds through a period is a gap: a later period's assertion starts the flag anew.
    await submit(svc, tokens, "civil", "2027-03", csv_body(LI.row(category="低保")))
    await submit(svc, tokens, "civil", "2027-09", csv_body(ZHAO.row(category="孤儿")))
    zhao = await _lookup(svc, tokens, ZHAO.id)
    assert [(f["status"], f["valid_from"]) for f in zhao["flags"]] == [("active", "2027-09")]


async def test_events_registered_updated_and_feed_completed_without_personal_data(start_service, tokens):
    svc = await start_service("registry")
    await svc.wait_events_ready()
    first = await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), LI.row(), ZHAO.row(name="")))
    await submit(
        svc,
        tokens,
        "dpf",
        "2026-09",
        csv_body(WANG.row(category="残疾", disability="智力残疾", grade="二级")),
    )
    events = await stream_events(svc)
    types = [e["type"].split(".")[-2] for e in events]
    assert types.count("registered") == 2 and types.count("updated") == 1 and types.count("completed") == 2
    completed = next(e for e in events if e["type"].endswith("feed.completed.v1"))
    assert completed["data"]["batch_id"] == first["id"]
    assert (
        completed["data"]["accepted"],
        completed["data"]["rejected"],
        completed["data"]["children_registered"],
    ) == (2, 1, 2)
    upd = next(e for e in events if e["type"].endswith("child.updated.v1"))
    assert upd["data"]["disability_type"] == "intellectual" and upd["data"]["categories"] == [
        "disabled",
        "resident",
    ]
    assert upd["sequence"] == 2 and upd["data"]["id_blind_index"]
    text = json.dumps(events, ensure_ascii=False)
    for secret in (WANG.id, LI.id, WANG.name, LI.name, WANG.guardian, WANG.phone, "渠庄村"):
        assert secret not in text


async def test_an_unchanged_snapshot_is_not_announced_again_and_its_digest_keeps_its_form(
    start_service, tokens
):
    """The snapshot digest is the SHA-256 of the event data as ``json.dumps(…, sort_keys=True, default=str)``
    writes it: records stored by earlier releases compare equal, so an upgrade announces nobody again."""
    svc = await start_service("registry")
    await submit(svc, tokens, "police", "2026-03", csv_body(WANG.row(), LI.row()))
    again = await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), LI.row()))
    assert (again["children_registered"], again["children_updated"]) == (0, 0)
    registered = {e["subject"]: e["data"] for e in await outbox_events(svc, "child.registered.v1")}
    assert len(registered) == 2
    assert await outbox_events(svc, "child.updated.v1") == []
    async with svc.ctx.db.transaction() as session:
        stored = dict((await session.execute(text("SELECT id, snapshot_hash FROM children"))).all())
    for child_id, data in registered.items():
        expected = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
        assert stored[child_id] == expected


async def test_a_large_batch_refreshes_the_statistics_of_what_it_added_before_joining_it(
    start_service, tokens, monkeypatch
):
    """PostgreSQL: a batch of ``ANALYZE_FROM_ROWS`` rows or more analyses ``children`` and
    ``child_attributes`` inside its merge (the rows it added are in no statistics yet); a smaller one
    does not. SQLite keeps no such statistics: nothing to refresh."""
    svc = await start_service("registry")
    if svc.ctx.db.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite keeps no statistics to refresh")

    async def analysed() -> int:
        async with svc.ctx.db.transaction() as session:
            await session.execute(text("SELECT pg_stat_clear_snapshot()"))
            counts = await session.execute(
                text(
                    "SELECT relname, analyze_count FROM pg_stat_user_tables "
                    "WHERE relname IN ('children', 'child_attributes')"
                )
            )
            return sum(n for _, n in counts)

    monkeypatch.setattr(ingest, "ANALYZE_FROM_ROWS", 3)
    before = await analysed()  # the run's database is shared by the tests of this worker
    await submit(svc, tokens, "police", "2026-03", csv_body(WANG.row(), LI.row()))
    assert await analysed() == before
    batch = await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), LI.row(), ZHAO.row()))
    assert batch["accepted"] == 3
    assert await analysed() == before + 2


async def test_a_late_delivery_of_an_older_period_keeps_the_newer_contact_values(start_service, tokens):
    """Contact values are the latest period's: the police's 2026-03 batch delivered after their 2026-09 one
    leaves the 2026-09 address, guardian and phone on the record; its values are kept in provenance only.
    A later period changes them again."""
    svc = await start_service("registry")
    new, old = "山东省枣庄市山亭区店子镇新地址1号", "山东省枣庄市山亭区店子镇旧地址9号"
    await submit(
        svc,
        tokens,
        "police",
        "2026-09",
        csv_body(WANG.row(phone="13811112222", current=new, guardian="王建国")),
    )
    await submit(
        svc,
        tokens,
        "police",
        "2026-03",
        csv_body(WANG.row(phone="13899990000", current=old, guardian="王大山")),
    )
    child = await _lookup(svc, tokens, WANG.id)
    assert (child["current_address"], child["guardian_name"], child["guardian_phone"]) == (
        new,
        "王建国",
        "13811112222",
    )
    kept = {
        (a["attribute"], a["last_period"]) for a in child["provenance"] if a["attribute"] == "current_address"
    }
    assert kept == {("current_address", "2026-09"), ("current_address", "2026-03")}
    assert child["needs_review"] is False
    # The next period's values are the record's.
    await submit(svc, tokens, "police", "2027-03", csv_body(WANG.row(phone="13899990000", current=old)))
    child = await _lookup(svc, tokens, WANG.id)
    assert (child["current_address"], child["guardian_phone"]) == (old, "13899990000")


async def test_undoing_a_link_replays_flags_by_delivery_not_by_batch(start_service, tokens):
    """The replay of an undone link lapses flags as the feeds do: civil affairs' record of ZHAO (linked to
    the police's, then separated) was not fed in 2026-09, whose delivery came in a part and a completing
    batch; its flag lapses by the completing batch, not by the part."""
    svc = await start_service("registry")
    bureau = tokens.headers("bureau", BUREAU, purpose="data quality review")
    await submit(svc, tokens, "police", "2026-03", csv_body(ZHAO.row()))
    await submit(svc, tokens, "civil", "2026-03", csv_body(ZHAO.row(id="", category="孤儿")))
    await _submit_part(svc, tokens, "civil", "2026-09", csv_body(LI.row(category="低保")))
    completing = await submit(svc, tokens, "civil", "2026-09", csv_body(ZHAO.row(id="", category="孤儿")))
    [first, _] = (await svc.client.get("/v1/merges", headers=bureau)).json()["items"]
    assert (await svc.client.post(f"/v1/merges/{first['id']}/undo", headers=bureau)).status_code == 200
    separated = (await svc.client.get(f"/v1/children/{first['merged_id']}", headers=bureau)).json()
    assert [(f["status"], f["valid_from"], f["lapsed_period"]) for f in separated["flags"]] == [
        ("lapsed", "2026-03", "2026-09")
    ]
    r = await svc.client.get("/v1/review-items", params={"kind": "flag_lapsed"}, headers=bureau)
    assert [(i["child_id"], i["batch_id"]) for i in r.json()["items"]] == [
        (separated["id"], completing["id"])
    ]
