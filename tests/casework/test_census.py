"""Special-needs census (completeness and lateness per school) and support plans (一生一案, 一家一案)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select

from baoxue.contracts.casework import CensusCompleted, RosterSet
from casework.census import service as census_service
from casework.census.models import Census
from casework.census.schemas import CensusMark
from tests.casework.helpers import SCHOOL_A, SCHOOL_B, TOWN_A, outbox_events

SEMESTER = "2026-autumn"  # starts 2026-09-01: the census is due 2026-09-15


@pytest.fixture
def server_day(monkeypatch):
    """The server's calendar day as the census sees it (its clock, not a client's statement)."""

    def set_day(day: str) -> None:
        monkeypatch.setattr(census_service, "today", lambda: dt.date.fromisoformat(day))

    return set_day


async def test_census_completion_lateness_and_event(start_service, tokens, server_day):
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
    server_day("2026-09-14")
    done = await svc.client.post(f"{base}/{SCHOOL_A}/complete", headers=a)
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["on_time"] is True and body["due_on"] == "2026-09-15" and body["students"] == 2
    assert body["completed_on"] == "2026-09-14"
    assert body["counts_by_category"] == {
        "disabled": 1,
        "left_behind": 1,
        "low_income": 1,
        "registered_poor": 1,
    }
    again = await svc.client.post(f"{base}/{SCHOOL_A}/students", json=marks, headers=a)
    assert again.status_code == 409 and again.json()["code"] == "census_already_completed"
    server_day("2026-09-20")
    late = await svc.client.post(f"{base}/{SCHOOL_B}/complete", headers=b)
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


async def test_a_census_is_completed_on_the_servers_day_and_cannot_be_back_dated(
    start_service, tokens, server_day
):
    """Lateness is the server's: a stated completion day other than today is refused (422), so a late
    school cannot make itself on time; nor can a census be completed before its semester starts (409)."""
    svc = await start_service("casework")
    b = tokens.headers("school", SCHOOL_B)
    url = f"/v1/census/{SEMESTER}/schools/{SCHOOL_B}/complete"
    server_day("2026-08-28")  # the semester starts 2026-09-01
    early = await svc.client.post(url, headers=b)
    assert (early.status_code, early.json()["code"]) == (409, "census_not_open")
    server_day("2026-09-20")  # five days after the due date
    for stated in ("2026-09-14", "2026-09-21"):  # back-dated into the window, or in the future
        refused = await svc.client.post(url, params={"completed_on": stated}, headers=b)
        assert (refused.status_code, refused.json()["code"]) == (422, "census_date_not_today"), stated
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["errors"][0]["field"] == "completed_on"
    assert await outbox_events(svc, CensusCompleted) == []  # nothing was completed
    done = await svc.client.post(url, params={"completed_on": "2026-09-20"}, headers=b)  # today: fine
    assert done.status_code == 201, done.text
    assert (done.json()["completed_on"], done.json()["on_time"]) == ("2026-09-20", False)
    summary = (await svc.client.get(f"/v1/census/{SEMESTER}", headers=b)).json()
    [mine] = [s for s in summary["by_school"] if s["school_code"] == SCHOOL_B]
    assert (mine["completed"], mine["late"], mine["on_time"]) == (True, True, False)


async def test_only_a_simulation_stack_accepts_a_past_day_for_the_demo(start_service, tokens, server_day):
    """``make demo`` plays a statutory year in minutes: with ``CASEWORK_SIMULATION`` a past day of the
    semester is accepted (never a future one, never before the semester); a stack without it refuses it,
    in the ``development`` environment of ``make run`` too."""
    url = f"/v1/census/{SEMESTER}/schools/{{}}/complete"
    a, b = tokens.headers("school", SCHOOL_A), tokens.headers("school", SCHOOL_B)
    plain = await start_service("casework", environment="development")
    server_day("2026-11-27")
    refused = await plain.client.post(url.format(SCHOOL_A), params={"completed_on": "2026-09-10"}, headers=a)
    assert (refused.status_code, refused.json()["code"]) == (422, "census_date_not_today")
    svc = await start_service("casework", simulation=True)
    past = await svc.client.post(url.format(SCHOOL_A), params={"completed_on": "2026-09-10"}, headers=a)
    assert (past.status_code, past.json()["on_time"]) == (201, True)
    for stated in ("2026-08-31", "2026-11-28"):
        refused = await svc.client.post(url.format(SCHOOL_B), params={"completed_on": stated}, headers=b)
        assert (refused.status_code, refused.json()["code"]) == (422, "census_date_not_today"), stated


async def test_census_marks_feed_the_visit_quotas_of_the_roster(start_service, tokens):
    """A student the census marks owes the visits of its categories together with the roster's (the
    larger quota wins; neither removes the other's), whether the roster comes before or after the marks;
    a change in the special-group count publishes a RosterSet with a higher sequence."""
    svc = await start_service("casework", visit_quotas={"left_behind": 2, "disabled": 3})
    school = tokens.headers("school", SCHOOL_A)
    roster = {
        "students": [
            {"student_id": "s1"},
            {"student_id": "s2", "categories": ["left_behind"]},
            {"student_id": "s3", "categories": ["left_behind"]},
            {"student_id": "s4"},
        ]
    }
    roster_url = f"/v1/rosters/{SCHOOL_A}/{SEMESTER}"
    r = await svc.client.put(roster_url, json=roster, headers=school)
    assert (r.json()["students"], r.json()["special_group"]) == (4, 2)

    async def owed() -> dict[str, int]:
        items = (
            await svc.client.get("/v1/visits/owed", params={"semester": SEMESTER}, headers=school)
        ).json()["items"]
        return {o["student_id"]: o["required_visits"] for o in items}

    async def coverage() -> tuple[int, int]:
        [row] = (
            await svc.client.get("/v1/visits/coverage", params={"semester": SEMESTER}, headers=school)
        ).json()
        return row["students"], row["special_students"]

    marks = {
        "students": [
            {"student_id": "s1", "categories": ["disabled"]},  # not special on the roster
            {"student_id": "s2", "categories": ["disabled"]},  # left_behind (2) ∪ disabled (3) → 3
            {"student_id": "s3", "categories": ["migrant"]},  # no quota: the roster's left_behind stays
            {"student_id": "s9", "categories": ["left_behind"]},  # not on the roster: no entry appears
        ]
    }
    census_url = f"/v1/census/{SEMESTER}/schools/{SCHOOL_A}/students"
    assert (await svc.client.post(census_url, json=marks, headers=school)).status_code == 200
    assert await owed() == {"s1": 3, "s2": 3, "s3": 2, "s4": 1}
    assert await coverage() == (4, 3)
    events = sorted(await outbox_events(svc, RosterSet), key=lambda e: e["sequence"])
    assert [(e["sequence"], e["data"]["special_group_students"]) for e in events] == [(1, 2), (2, 3)]

    # A roster replacement keeps the semester's marks; a new mark replaces the student's old one.
    assert (await svc.client.put(roster_url, json=roster, headers=school)).json()["special_group"] == 3
    assert await owed() == {"s1": 3, "s2": 3, "s3": 2, "s4": 1}
    remark = {"students": [{"student_id": "s1", "categories": ["migrant"]}]}
    assert (await svc.client.post(census_url, json=remark, headers=school)).status_code == 200
    assert await owed() == {"s1": 1, "s2": 3, "s3": 2, "s4": 1}
    events = sorted(await outbox_events(svc, RosterSet), key=lambda e: e["sequence"])
    assert [(e["sequence"], e["data"]["special_group_students"]) for e in events][-2:] == [(3, 3), (4, 2)]
    # Another semester's marks do not count.
    other = f"/v1/census/2027-spring/schools/{SCHOOL_A}/students"
    spring = {"students": [{"student_id": "s4", "categories": ["disabled"]}]}
    assert (await svc.client.post(other, json=spring, headers=school)).status_code == 200
    assert (await owed())["s4"] == 1


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


async def test_a_plan_refuses_null_for_its_measures_and_review_date(start_service, tokens):
    svc = await start_service("casework")
    a = tokens.headers("school", SCHOOL_A)
    plan = {
        "kind": "student",
        "student_id": "s1",
        "measures": ["结对帮扶"],
        "mentor": "t1",
        "review_on": "2027-01-10",
    }
    created = await svc.client.post("/v1/support-plans", json=plan, headers=a)
    url, tag = f"/v1/support-plans/{created.json()['id']}", created.headers["ETag"]
    for field in ("measures", "review_on"):
        r = await svc.client.patch(url, json={field: None}, headers={**a, "If-Match": tag})
        assert r.status_code == 422, (field, r.text)
        assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [(field, "null_not_allowed")]
    cleared = await svc.client.patch(url, json={"mentor": None}, headers={**a, "If-Match": tag})
    assert cleared.status_code == 200 and cleared.json()["mentor"] is None


async def test_completions_at_the_same_moment_give_one_census_and_409_for_the_others(
    start_service, tokens, server_day
):
    """A double tap, or a retry over a flaky connection racing the first request: one completion is
    stored (one CensusCompleted), every other request is 409 census_already_completed (it was a 500 when
    the losers' inserts hit the primary key after their check found nothing)."""
    svc = await start_service("casework")
    a = tokens.headers("school", SCHOOL_A)
    server_day("2026-09-10")
    url = f"/v1/census/{SEMESTER}/schools/{SCHOOL_A}/complete"
    answers = await asyncio.gather(*(svc.client.post(url, headers=a) for _ in range(4)))
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409], [r.text for r in answers]
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"census_already_completed"}
    [won] = [r.json() for r in answers if r.status_code == 201]
    [event] = await outbox_events(svc, CensusCompleted)
    assert event["data"]["census_id"] == won["id"]
    async with svc.ctx.db.transaction() as s:
        assert (await s.execute(select(func.count()).select_from(Census))).scalar_one() == 1


async def test_marks_stored_while_the_census_is_completed_are_in_its_counts(
    start_service, tokens, server_day
):
    """A school marks a student while (another device of) the school completes the census: the
    completion waits for the marking transaction and counts its mark. Before, the completion counted
    only the marks committed before it (READ COMMITTED) and the mark was stored after the census was
    closed, outside its counts, with no 409."""
    svc = await start_service("casework")
    if svc.ctx.db.dialect != "postgresql":
        pytest.skip("SQLite has one writer: a marking transaction and a completion never overlap there")
    server_day("2026-09-10")
    school = svc.principal("school", SCHOOL_A)
    marks = CensusMark.model_validate({"students": [{"student_id": "s1", "categories": ["disabled"]}]})
    marked, release = asyncio.Event(), asyncio.Event()

    async def marking() -> None:
        async with svc.ctx.db.transaction() as s:
            await census_service.mark_students(
                session=s, ctx=svc.ctx, principal=school, school_code=SCHOOL_A, semester=SEMESTER, data=marks
            )
            marked.set()
            await release.wait()

    task = asyncio.create_task(marking())
    await marked.wait()
    url = f"/v1/census/{SEMESTER}/schools/{SCHOOL_A}/complete"
    completion = asyncio.create_task(svc.client.post(url, headers=tokens.headers("school", SCHOOL_A)))
    await svc.until_done_or_waiting(completion)
    release.set()
    await task
    done = await completion
    assert done.status_code == 201, done.text
    assert (done.json()["students"], done.json()["counts_by_category"]) == (1, {"disabled": 1})
