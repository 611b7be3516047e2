"""Special-needs census (completeness and lateness per school) and support plans (一生一案, 一家一案)."""

from __future__ import annotations

from baoxue.contracts.casework import CensusCompleted
from tests.casework.helpers import SCHOOL_A, SCHOOL_B, TOWN_A, outbox_events

SEMESTER = "2026-autumn"  # starts 2026-09-01: the census is due 2026-09-15


async def test_census_completion_lateness_and_event(start_service, tokens):
    svc = await start_service("casework")
    a, b = tokens.headers("school", SCHOOL_A), tokens.headers("school", SCHOOL_B)
    marks = {
        "students": [
            {"student_id": "s1", "categories": ["left_behind", "registered_poor"]},
            {"student_id": "s2", "categories": ["disabled"]},
        ]
    }
    base = f"/v1/census/{SEMESTER}/schools"
    assert (await svc.client.post(f"{base}/{SCHOOL_A}/students", json=marks, headers=a)).json() == {
        "marked": 2
    }
    replace = {"students": [{"student_id": "s2", "categories": ["disabled", "low_income"]}]}
    assert (await svc.client.post(f"{base}/{SCHOOL_A}/students", json=replace, headers=a)).status_code == 200
    assert (await svc.client.post(f"{base}/{SCHOOL_A}/students", json=marks, headers=b)).status_code == 404
    done = await svc.client.post(
        f"{base}/{SCHOOL_A}/complete", params={"completed_on": "2026-09-14"}, headers=a
    )
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["on_time"] is True and body["due_on"] == "2026-09-15" and body["students"] == 2
    assert body["counts_by_category"] == {
        "disabled": 1,
        "left_behind": 1,
        "low_income": 1,
        "registered_poor": 1,
    }
    again = await svc.client.post(f"{base}/{SCHOOL_A}/students", json=marks, headers=a)
    assert again.status_code == 409 and again.json()["code"] == "census_already_completed"
    late = await svc.client.post(
        f"{base}/{SCHOOL_B}/complete", params={"completed_on": "2026-09-20"}, headers=b
    )
    assert late.json()["on_time"] is False and late.json()["students"] == 0
    events = await outbox_events(svc, CensusCompleted)
    assert [(e["data"]["school_code"], e["data"]["on_time"]) for e in events] == [
        (SCHOOL_A, True),
        (SCHOOL_B, False),
    ]

    bureau = (
        await svc.client.get(f"/v1/census/{SEMESTER}", headers=tokens.headers("bureau", "370406D01"))
    ).json()
    by_school = {s["school_code"]: s for s in bureau["by_school"]}
    assert by_school[SCHOOL_A]["completed"] and not by_school[SCHOOL_A]["late"]
    assert by_school[SCHOOL_B]["late"] and by_school[SCHOOL_A]["students_marked"] == 2
    assert bureau["completed"] == 2 and bureau["on_time"] == 1
    assert (
        bureau["missing"] == bureau["schools"] - 2 and bureau["late"] == bureau["missing"] + 1
    )  # now is past due
    town = (await svc.client.get(f"/v1/census/{SEMESTER}", headers=tokens.headers("town", TOWN_A))).json()
    assert all(s["school_code"].startswith(TOWN_A) for s in town["by_school"]) and town["completed"] == 1


async def test_support_plans_per_student_and_registered_poor_family(start_service, tokens):
    svc = await start_service("casework")
    a = tokens.headers("school", SCHOOL_A)
    plan = {
        "kind": "student",
        "student_id": "s1",
        "measures": ["结对帮扶"],
        "mentor": "t1",
        "aid": "营养餐",
        "review_on": "2027-01-10",
    }
    created = await svc.client.post("/v1/support-plans", json=plan, headers=a)
    assert created.status_code == 201, created.text
    dup = await svc.client.post("/v1/support-plans", json=plan, headers=a)
    assert dup.status_code == 409 and dup.json()["code"] == "plan_exists"
    family = {
        "kind": "family",
        "family_ref": "hh-1",
        "student_ids": ["s1", "s9"],
        "measures": ["教育资助"],
        "review_on": "2026-12-01",
    }
    refused = await svc.client.post("/v1/support-plans", json=family, headers=a)
    assert refused.status_code == 409 and refused.json()["code"] == "family_not_registered_poor"
    marks = {"students": [{"student_id": "s9", "categories": ["registered_poor"]}]}
    await svc.client.post(f"/v1/census/{SEMESTER}/schools/{SCHOOL_A}/students", json=marks, headers=a)
    fam = await svc.client.post("/v1/support-plans", json=family, headers=a)
    assert fam.status_code == 201 and fam.json()["subject"] == "hh-1"
    due = (
        await svc.client.get("/v1/support-plans", params={"review_before": "2026-12-31"}, headers=a)
    ).json()
    assert [p["kind"] for p in due["items"]] == ["family"]
    tag = created.headers["ETag"]
    pid = created.json()["id"]
    ok = await svc.client.patch(
        f"/v1/support-plans/{pid}", json={"mentor": "t2"}, headers={**a, "If-Match": tag}
    )
    assert ok.status_code == 200
    stale = await svc.client.patch(
        f"/v1/support-plans/{pid}", json={"aid": "x"}, headers={**a, "If-Match": tag}
    )
    assert stale.status_code == 412 and stale.json()["conflicting_fields"] == ["mentor"]
    foreign = await svc.client.get(f"/v1/support-plans/{pid}", headers=tokens.headers("teacher", SCHOOL_B))
    assert foreign.status_code == 404
