"""Hukou corrections from the police: each kind changes the status, publishes ChildStatusChanged, can be undone."""

from __future__ import annotations

import pytest

from tests.registry.conftest import BUREAU, csv_body, dept_headers, stream_events, submit
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
