"""Hukou corrections from the police: each kind changes the status, publishes ChildStatusChanged, can be undone."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from baoxue.testing.plugin import eventually
from baoxue.workdays import today_in_china
from enrollment.children.models import ChildView
from tests.registry.conftest import BUREAU, csv_body, dept_headers, outbox_events, stream_events, submit
from tests.registry.people import DIANZI_TOWN, LI, WANG, ZHAO


async def _ids(svc, tokens) -> dict[str, str]:
    await svc.wait_events_ready()
    await submit(svc, tokens, "police", "2026-09", csv_body(WANG.row(), LI.row(), ZHAO.row()))
    out = {}
    for kid in (WANG, LI, ZHAO):
        r = await svc.client.post(
            "/v1/children/lookup", json={"id_number": kid.id}, headers=tokens.headers("bureau", BUREAU)
        )
        out[kid.name] = r.json()["id"]
    return out


@pytest.mark.parametrize("kind", ["deceased", "moved_out", "missing"])
async def test_status_corrections_publish_and_undo(start_service, tokens, kind):
    svc = await start_service("registry")
    ids = await _ids(svc, tokens)
    police = dept_headers(tokens, "police")
    r = await svc.client.post(
        f"/v1/children/{ids[WANG.name]}/hukou-corrections",
        json={"kind": kind, "effective_date": "2026-10-08"},
        headers=police,
    )
    assert r.status_code == 201, r.text
    correction = r.json()
    assert (correction["previous_status"], correction["kind"]) == ("active", kind)
    child = (
        await svc.client.get(f"/v1/children/{ids[WANG.name]}", headers=tokens.headers("bureau", BUREAU))
    ).json()
    assert (child["status"], child["status_effective"]) == (kind, "2026-10-08")
    assert child["history"][-1]["kind"] == f"hukou_{kind}"
    again = await svc.client.post(
        f"/v1/children/{ids[WANG.name]}/hukou-corrections",
        json={"kind": kind, "effective_date": "2026-10-08"},
        headers=police,
    )
    assert again.json()["code"] == "correction_no_change"
    events = await stream_events(svc)
    changed = [e for e in events if e["type"].endswith("child.status_changed.v1")]
    assert len(changed) == 1
    data = changed[0]["data"]
    assert (data["child_id"], data["status"], data["previous_status"], data["effective_date"]) == (
        ids[WANG.name],
        kind,
        "active",
        "2026-10-08",
    )
    assert data["correction_id"] == correction["id"] and data["hukou_town"] == DIANZI_TOWN
    updated = [e for e in events if e["type"].endswith("child.updated.v1") and e["subject"] == ids[WANG.name]]
    assert updated[-1]["data"]["status"] == kind and updated[-1]["sequence"] > changed[0]["sequence"]
    undo = await svc.client.post(f"/v1/hukou-corrections/{correction['id']}/undo", headers=police)
    assert undo.status_code == 200 and undo.json()["undone_at"]
    child = (
        await svc.client.get(f"/v1/children/{ids[WANG.name]}", headers=tokens.headers("bureau", BUREAU))
    ).json()
    assert child["status"] == "active"
    back = [e for e in await stream_events(svc) if e["type"].endswith("child.status_changed.v1")][-1]["data"]
    assert (back["status"], back["previous_status"]) == ("active", kind)
    assert (await svc.client.post(f"/v1/hukou-corrections/{correction['id']}/undo", headers=police)).json()[
        "code"
    ] == "correction_already_undone"


async def test_duplicate_registration_merges_keeps_history_and_undoes(start_service, tokens):
    svc = await start_service("registry")
    ids = await _ids(svc, tokens)
    police = dept_headers(tokens, "police")
    await submit(svc, tokens, "civil", "2026-09", csv_body(ZHAO.row(category="留守")))
    r = await svc.client.post(
        f"/v1/children/{ids[ZHAO.name]}/hukou-corrections",
        json={"kind": "duplicate", "effective_date": "2026-10-09"},
        headers=police,
    )
    assert r.json()["code"] == "duplicate_of_required"
    r = await svc.client.post(
        f"/v1/children/{ids[ZHAO.name]}/hukou-corrections",
        json={"kind": "duplicate", "effective_date": "2026-10-09", "duplicate_of": ids[WANG.name]},
        headers=police,
    )
    assert r.status_code == 201, r.text
    bureau = tokens.headers("bureau", BUREAU)
    survivor = (await svc.client.get(f"/v1/children/{ids[WANG.name]}", headers=bureau)).json()
    assert survivor["merged_records"] == [ids[ZHAO.name]]
    assert "left_behind" in survivor["categories"]  # the duplicate's flags count for the record that remains
    assert any(a["record_id"] == ids[ZHAO.name] for a in survivor["provenance"])
    merged = (await svc.client.get(f"/v1/children/{ids[ZHAO.name]}", headers=bureau)).json()
    assert (merged["status"], merged["merged_into"]) == ("duplicate", ids[WANG.name])
    listed = (await svc.client.get("/v1/children", headers=bureau)).json()["items"]
    assert ids[ZHAO.name] not in {c["id"] for c in listed}
    events = await stream_events(svc)
    dup = [e["data"] for e in events if e["type"].endswith("child.status_changed.v1")][-1]
    assert (dup["status"], dup["merged_into"]) == ("duplicate", ids[WANG.name])
    # A later feed naming the duplicate's ID number lands on the record that remains.
    await submit(svc, tokens, "poverty", "2026-09", csv_body(ZHAO.row(category="建档立卡")))
    survivor = (await svc.client.get(f"/v1/children/{ids[WANG.name]}", headers=bureau)).json()
    assert "registered_poor" in survivor["categories"]
    undo = await svc.client.post(f"/v1/hukou-corrections/{r.json()['id']}/undo", headers=police)
    assert undo.status_code == 200, undo.text
    merged = (await svc.client.get(f"/v1/children/{ids[ZHAO.name]}", headers=bureau)).json()
    assert (merged["status"], merged["merged_into"]) == ("active", None)
    assert [h["kind"] for h in merged["history"]][-2:] == ["merge_undone", "hukou_correction_undone"]


async def test_a_correction_dated_in_the_future_or_before_birth_is_refused_and_publishes_nothing(
    start_service, tokens
):
    svc = await start_service("registry")
    ids = await _ids(svc, tokens)
    police = dept_headers(tokens, "police")
    tomorrow = today_in_china() + dt.timedelta(days=1)
    before_birth = WANG.birth - dt.timedelta(days=1)
    refused = [
        ({"kind": "deceased", "effective_date": "2099-01-01"}, "correction_date_in_future"),
        ({"kind": "missing", "effective_date": tomorrow.isoformat()}, "correction_date_in_future"),
        ({"kind": "moved_out", "effective_date": "1990-01-01"}, "correction_date_before_birth"),
        ({"kind": "moved_out", "effective_date": before_birth.isoformat()}, "correction_date_before_birth"),
        (
            {"kind": "duplicate", "effective_date": "2099-01-01", "duplicate_of": ids[LI.name]},
            "correction_date_in_future",
        ),
    ]
    for body, code in refused:
        r = await svc.client.post(
            f"/v1/children/{ids[WANG.name]}/hukou-corrections", json=body, headers=police
        )
        assert (r.status_code, r.json()["code"]) == (422, code), r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert await outbox_events(svc, "child.status_changed.v1") == []
    child = (
        await svc.client.get(f"/v1/children/{ids[WANG.name]}", headers=tokens.headers("bureau", BUREAU))
    ).json()
    assert (child["status"], child["merged_into"]) == ("active", None)
    for day in (WANG.birth, today_in_china()):  # the day of birth and today are possible
        r = await svc.client.post(
            f"/v1/children/{ids[WANG.name]}/hukou-corrections",
            json={"kind": "missing", "effective_date": day.isoformat()},
            headers=police,
        )
        assert r.status_code == 201, r.text
        await svc.client.post(f"/v1/hukou-corrections/{r.json()['id']}/undo", headers=police)


@pytest.mark.parametrize(
    ("first", "then", "status"),
    [
        ("deceased", "moved_out", 409),
        ("deceased", "missing", 409),
        ("deceased", "duplicate", 409),
        ("moved_out", "deceased", 409),
        ("moved_out", "missing", 409),
        ("moved_out", "duplicate", 409),
        ("missing", "deceased", 201),
        ("missing", "moved_out", 201),
        ("missing", "duplicate", 201),
    ],
)
async def test_a_final_status_takes_no_further_correction(start_service, tokens, first, then, status):
    """Deceased and moved out (迁出注销) are final: no correction follows them (a wrong one is undone
    instead). A missing child may be found deceased, moved out or a duplicate registration."""
    svc = await start_service("registry")
    ids = await _ids(svc, tokens)
    police = dept_headers(tokens, "police")
    url = f"/v1/children/{ids[WANG.name]}/hukou-corrections"
    r = await svc.client.post(url, json={"kind": first, "effective_date": "2026-10-08"}, headers=police)
    assert r.status_code == 201, r.text
    published = len(await outbox_events(svc, "child.status_changed.v1"))
    body = {"kind": then, "effective_date": "2026-10-09"} | (
        {"duplicate_of": ids[LI.name]} if then == "duplicate" else {}
    )
    r = await svc.client.post(url, json=body, headers=police)
    assert r.status_code == status, r.text
    after = await outbox_events(svc, "child.status_changed.v1")
    child = (await svc.client.get(url.rsplit("/", 1)[0], headers=tokens.headers("bureau", BUREAU))).json()
    if status == 409:
        assert r.json()["code"] == "correction_status_final"
        assert len(after) == published and child["status"] == first
    else:
        assert len(after) > published and child["status"] == then
        assert after[-1]["data"]["previous_status"] == first or then == "duplicate"


async def test_only_the_police_correct_and_only_inside_the_district(start_service, tokens):
    svc = await start_service("registry")
    ids = await _ids(svc, tokens)
    body = {"kind": "deceased", "effective_date": "2026-10-08"}
    for headers in (
        tokens.headers("bureau", BUREAU),
        dept_headers(tokens, "civil"),
        tokens.headers("town", DIANZI_TOWN),
    ):
        assert (
            await svc.client.post(
                f"/v1/children/{ids[WANG.name]}/hukou-corrections", json=body, headers=headers
            )
        ).status_code == 403
    r = await svc.client.post(
        "/v1/children/nope/hukou-corrections", json=body, headers=dept_headers(tokens, "police")
    )
    assert r.status_code == 404


async def test_undoing_a_duplicate_gives_back_what_later_feeds_said_about_the_duplicate(
    start_service, tokens
):
    """While ZHAO's record is a duplicate of WANG's, rows with ZHAO's ID number land on WANG's record. Undoing
    the correction gives those rows back to ZHAO's record with what they brought: provenance, flags, the
    guardian phone and address; WANG's record is as if they had never come."""
    svc = await start_service("registry")
    ids = await _ids(svc, tokens)
    police, bureau = (
        dept_headers(tokens, "police"),
        tokens.headers("bureau", BUREAU, purpose="data quality review"),
    )
    r = await svc.client.post(
        f"/v1/children/{ids[ZHAO.name]}/hukou-corrections",
        json={"kind": "duplicate", "effective_date": "2026-10-09", "duplicate_of": ids[WANG.name]},
        headers=police,
    )
    assert r.status_code == 201, r.text
    later = ZHAO.row(category="建档立卡", phone="13911112222", current="山亭区店子镇新村8号")
    await submit(svc, tokens, "poverty", "2027-03", csv_body(later))
    wang = (await svc.client.get(f"/v1/children/{ids[WANG.name]}", headers=bureau)).json()
    assert "registered_poor" in wang["categories"] and wang["guardian_phone"] == "13911112222"

    undo = await svc.client.post(f"/v1/hukou-corrections/{r.json()['id']}/undo", headers=police)
    assert undo.status_code == 200, undo.text
    wang = (await svc.client.get(f"/v1/children/{ids[WANG.name]}", headers=bureau)).json()
    zhao = (await svc.client.get(f"/v1/children/{ids[ZHAO.name]}", headers=bureau)).json()
    assert (wang["categories"], wang["sources"]) == (["resident"], ["police"])
    assert [f["category"] for f in wang["flags"]] == ["resident"]
    assert {a["department"] for a in wang["provenance"]} == {"police"}
    assert (wang["guardian_phone"], wang["current_address"]) == (WANG.phone, WANG.hukou)
    assert (zhao["status"], set(zhao["categories"]), zhao["sources"]) == (
        "active",
        {"resident", "registered_poor"},
        ["police", "poverty"],
    )
    poor = next(f for f in zhao["flags"] if f["category"] == "registered_poor")
    assert (poor["status"], poor["valid_from"], poor["department"]) == ("active", "2027-03", "poverty")
    assert {(a["attribute"], a["value"]) for a in zhao["provenance"] if a["department"] == "poverty"} >= {
        ("name", ZHAO.name),
        ("current_address", "山亭区店子镇新村8号"),
    }
    assert (zhao["guardian_phone"], zhao["current_address"]) == ("13911112222", "山亭区店子镇新村8号")
    updated = [e for e in await stream_events(svc) if e["type"].endswith("child.updated.v1")]
    assert updated[-1]["data"]["categories"] in (["registered_poor", "resident"], ["resident"])
    last = {e["subject"]: e["data"] for e in updated}
    assert last[ids[WANG.name]]["categories"] == ["resident"]
    assert last[ids[ZHAO.name]]["categories"] == ["registered_poor", "resident"]
    # A later feed with ZHAO's ID number goes to ZHAO's record again.
    await submit(svc, tokens, "poverty", "2027-09", csv_body(later))
    zhao = (await svc.client.get(f"/v1/children/{ids[ZHAO.name]}", headers=bureau)).json()
    poor = next(f for f in zhao["flags"] if f["category"] == "registered_poor")
    assert (poor["status"], poor["valid_from"], poor["last_confirmed"]) == ("active", "2027-03", "2027-09")


async def _duplicate(svc, tokens, ids: dict[str, str], child: str, of: str) -> str:
    r = await svc.client.post(
        f"/v1/children/{ids[child]}/hukou-corrections",
        json={"kind": "duplicate", "effective_date": "2026-10-09", "duplicate_of": ids[of]},
        headers=dept_headers(tokens, "police"),
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


async def _items(svc, tokens, status: str = "open") -> set[tuple[str, str, str | None]]:
    r = await svc.client.get(
        "/v1/review-items", params={"status": status, "limit": 200}, headers=tokens.headers("bureau", BUREAU)
    )
    return {(i["child_id"], i["kind"], i["attribute"]) for i in r.json()["items"]}


async def test_undoing_a_duplicate_gives_back_the_review_items_its_rows_opened(start_service, tokens):
    """The row with ZHAO's ID number that reached WANG's record opened items there: its reasons (sex and
    birth date disagree with the ID number) and conflicts of its values with WANG's. Undone, the open
    ones go to ZHAO's record with the row; the one decided stays with the record it was decided on and
    ZHAO's record gets an open one; a conflict that no longer holds ends or moves where it holds."""
    svc = await start_service("registry")
    ids = await _ids(svc, tokens)
    bureau = tokens.headers("bureau", BUREAU)
    correction = await _duplicate(svc, tokens, ids, ZHAO.name, WANG.name)
    later = ZHAO.row(category="建档立卡", sex="男", birth="2015-07-21")  # the ID number: female, 07-20
    batch = await submit(svc, tokens, "poverty", "2027-03", csv_body(later))
    wang, zhao = ids[WANG.name], ids[ZHAO.name]
    assert await _items(svc, tokens) == {
        (wang, "id_sex_mismatch", None),
        (wang, "id_birth_date_mismatch", None),
        (wang, "conflict", "name"),
        (wang, "conflict", "birth_date"),
        (wang, "conflict", "guardian_phone"),  # police's and poverty's latest phones differ
    }
    r = await svc.client.get("/v1/review-items", params={"kind": "id_birth_date_mismatch"}, headers=bureau)
    [birth] = r.json()["items"]
    assert (
        await svc.client.post(f"/v1/review-items/{birth['id']}/reject", headers=bureau)
    ).status_code == 200

    undo = await svc.client.post(
        f"/v1/hukou-corrections/{correction}/undo", headers=dept_headers(tokens, "police")
    )
    assert undo.status_code == 200, undo.text
    assert await _items(svc, tokens) == {
        (zhao, "id_sex_mismatch", None),  # moved
        (zhao, "id_birth_date_mismatch", None),  # a new one: the decided one stays on WANG's record
        (zhao, "conflict", "birth_date"),  # moved: ZHAO's own birth date and the row's differ
        (zhao, "conflict", "sex"),  # the row brought ZHAO's record a sex of its own rows' other value
    }
    assert await _items(svc, tokens, "rejected") == {(wang, "id_birth_date_mismatch", None)}
    assert await _items(svc, tokens, "undone") == {
        (wang, "conflict", "name"),
        (wang, "conflict", "guardian_phone"),
    }
    r = await svc.client.get("/v1/review-items", params={"kind": "id_sex_mismatch"}, headers=bureau)
    assert [(i["batch_id"], i["hukou_town"]) for i in r.json()["items"]] == [(batch["id"], DIANZI_TOWN)]
    shown = {
        c: (await svc.client.get(f"/v1/children/{ids[c]}", headers=bureau)).json()
        for c in (WANG.name, ZHAO.name)
    }
    assert (shown[WANG.name]["needs_review"], shown[ZHAO.name]["needs_review"]) == (False, True)


@pytest.mark.parametrize("undone", ["first", "second"])
async def test_undoing_a_merge_of_a_chain_finds_the_rows_wherever_they_went(start_service, tokens, undone):
    """ZHAO is a duplicate of LI, then LI of WANG: WANG's record is the one that remains for all three, and
    a later feed naming ZHAO's ID number reaches it. Undoing the first merge gives ZHAO's record its rows
    back from WANG's; undoing the second gives LI's record back its own and ZHAO's (ZHAO is LI's
    duplicate again). WANG's record is as if they had never come, and is announced so."""
    svc = await start_service("registry")
    ids = await _ids(svc, tokens)
    bureau = tokens.headers("bureau", BUREAU, purpose="data quality review")
    first = await _duplicate(svc, tokens, ids, ZHAO.name, LI.name)
    second = await _duplicate(svc, tokens, ids, LI.name, WANG.name)
    zhao = (await svc.client.get(f"/v1/children/{ids[ZHAO.name]}", headers=bureau)).json()
    assert zhao["merged_into"] == ids[WANG.name]  # the record that remains
    later = ZHAO.row(category="建档立卡", phone="13911112222")
    batch = await submit(svc, tokens, "poverty", "2027-03", csv_body(later))
    assert batch["children_registered"] == 0
    wang = (await svc.client.get(f"/v1/children/{ids[WANG.name]}", headers=bureau)).json()
    assert set(wang["merged_records"]) == {ids[LI.name], ids[ZHAO.name]}
    assert "registered_poor" in wang["categories"] and wang["guardian_phone"] == "13911112222"

    correction = first if undone == "first" else second
    undo = await svc.client.post(
        f"/v1/hukou-corrections/{correction}/undo", headers=dept_headers(tokens, "police")
    )
    assert undo.status_code == 200, undo.text
    back = ZHAO.name if undone == "first" else LI.name
    wang = (await svc.client.get(f"/v1/children/{ids[WANG.name]}", headers=bureau)).json()
    given = (await svc.client.get(f"/v1/children/{ids[back]}", headers=bureau)).json()
    assert (wang["categories"], wang["guardian_phone"]) == (["resident"], WANG.phone)
    assert [f["category"] for f in wang["flags"]] == ["resident"] * len(wang["flags"])
    assert "poverty" not in {a["department"] for a in wang["provenance"]}
    assert (given["status"], given["guardian_phone"]) == ("active", "13911112222")
    assert set(given["categories"]) == {"resident", "registered_poor"}
    assert "poverty" in {a["department"] for a in given["provenance"]}
    if undone == "first":
        assert wang["merged_records"] == [ids[LI.name]]
    else:
        assert wang["merged_records"] == [] and given["merged_records"] == [ids[ZHAO.name]]
        zhao = (await svc.client.get(f"/v1/children/{ids[ZHAO.name]}", headers=bureau)).json()
        assert zhao["merged_into"] == ids[LI.name]
    updated = [e for e in await stream_events(svc) if e["type"].endswith("child.updated.v1")]
    last = {e["subject"]: e["data"] for e in updated}
    assert last[ids[WANG.name]]["categories"] == ["resident"]
    assert last[ids[back]]["categories"] == ["registered_poor", "resident"]
    # The next feed naming ZHAO's ID number reaches the record that remains for it now.
    await submit(svc, tokens, "poverty", "2027-09", csv_body(later))
    given = (await svc.client.get(f"/v1/children/{ids[back]}", headers=bureau)).json()
    poor = next(f for f in given["flags"] if f["category"] == "registered_poor")
    assert (poor["status"], poor["last_confirmed"]) == ("active", "2027-09")
    assert all(kind != "flag_lapsed" for _, kind, _ in await _items(svc, tokens))


async def test_a_merge_of_a_chain_announces_the_records_that_now_name_another(start_service, tokens):
    """ZHAO is a duplicate of LI; merging LI into WANG makes ZHAO's record name WANG's, and that is
    announced: ChildStatusChanged, duplicate to duplicate, merged_into WANG's record, the merge's effective
    date, at the next version of ZHAO's record. Undoing the merge makes it name LI's record again, announced
    likewise. Enrollment's consumer applies such an event: its read model names the record that remains."""
    enrollment = await start_service("enrollment")
    svc = await start_service("registry")
    await enrollment.wait_events_ready()
    ids = await _ids(svc, tokens)
    zhao = ids[ZHAO.name]

    async def zhao_events() -> list[dict]:
        return sorted(
            (e for e in await outbox_events(svc) if e["subject"] == zhao), key=lambda e: e["sequence"]
        )

    await _duplicate(svc, tokens, ids, ZHAO.name, LI.name)
    before = await zhao_events()
    second = await _duplicate(svc, tokens, ids, LI.name, WANG.name)
    [repointed] = (await zhao_events())[len(before) :]
    assert repointed["type"].endswith("child.status_changed.v1")
    assert repointed["sequence"] == before[-1]["sequence"] + 1  # after every version consumers hold
    data = repointed["data"]
    assert (data["child_id"], data["status"], data["previous_status"]) == (zhao, "duplicate", "duplicate")
    assert (data["merged_into"], data["effective_date"]) == (ids[WANG.name], "2026-10-09")
    # The record merged itself is announced as before; LI's record is not re-pointed twice.
    li_changed = [
        e["data"] for e in await outbox_events(svc, "child.status_changed.v1") if e["subject"] == ids[LI.name]
    ]
    assert [(d["previous_status"], d["merged_into"]) for d in li_changed] == [("active", ids[WANG.name])]

    undo = await svc.client.post(
        f"/v1/hukou-corrections/{second}/undo", headers=dept_headers(tokens, "police")
    )
    assert undo.status_code == 200, undo.text
    [rejoined] = (await zhao_events())[len(before) + 1 :]
    assert rejoined["sequence"] == repointed["sequence"] + 1
    assert (rejoined["data"]["status"], rejoined["data"]["previous_status"]) == ("duplicate", "duplicate")
    assert rejoined["data"]["merged_into"] == ids[LI.name]

    await svc.drain_outbox()
    await eventually(lambda: enrollment.handled(repointed["id"], rejoined["id"]), timeout=30)
    async with enrollment.ctx.db.transaction() as s:
        view = (
            await s.execute(select(ChildView.status, ChildView.merged_into).where(ChildView.child_id == zhao))
        ).one()
        dead = (await s.execute(select(enrollment.spec.tables.events.dead_letter.c.event_id))).all()
    assert tuple(view) == ("duplicate", ids[LI.name]) and dead == []
