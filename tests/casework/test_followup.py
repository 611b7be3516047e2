"""Persuasion log, the dropout report and its overdue sweep, the care plan of a returned student."""

from __future__ import annotations

import datetime as dt

from baoxue.contracts.casework import CaseReported, CaseReportOverdue
from casework import semesters
from casework.cases import reports
from casework.cases.reports import publish_overdue_reports
from tests.casework.helpers import (
    ENTRY_FIELDS,
    SCHOOL_A,
    SCHOOL_B,
    TOWN_A,
    case_in,
    enrol,
    move,
    open_case,
    outbox_events,
)

REPORT = {
    "basic_info": "七年级学生",
    "reason": "learning_weariness",
    "measures": "两次家访",
    "result": "考虑中",
}


async def test_persuasion_log(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("teacher", SCHOOL_A)
    school = tokens.headers("school", SCHOOL_A)
    suspected = await open_case(svc, school)
    attempt = {
        "attempted_on": "2026-11-21",
        "by": "王老师",
        "form": "home_visit",
        "outcome": "considering",
        "next_step": "村委会协助",
        "next_step_on": "2026-11-25",
    }
    r = await svc.client.post(f"/v1/cases/{suspected['id']}/persuasions", json=attempt, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "case_not_in_persuasion"
    case = await case_in(svc, school, "persuading")
    for form in ("home_visit", "phone", "town_meeting", "village_committee"):
        r = await svc.client.post(
            f"/v1/cases/{case['id']}/persuasions", json={**attempt, "form": form}, headers=h
        )
        assert r.status_code == 201, r.text
    retry = {**h, "Idempotency-Key": "persuasion-1"}
    first = await svc.client.post(f"/v1/cases/{case['id']}/persuasions", json=attempt, headers=retry)
    replay = await svc.client.post(f"/v1/cases/{case['id']}/persuasions", json=attempt, headers=retry)
    assert first.status_code == replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == replay.json()["id"]
    bad = await svc.client.post(
        f"/v1/cases/{case['id']}/persuasions", json={**attempt, "form": "letter"}, headers=h
    )
    assert bad.status_code == 422
    page = (
        await svc.client.get(f"/v1/cases/{case['id']}/persuasions", params={"limit": 3}, headers=h)
    ).json()
    assert [a["form"] for a in page["items"]] == ["home_visit", "phone", "town_meeting"]
    assert page["items"][0]["by"] == "王老师"
    rest = await svc.client.get(
        f"/v1/cases/{case['id']}/persuasions", params={"cursor": page["next_cursor"]}, headers=h
    )
    assert [a["form"] for a in rest.json()["items"]] == ["village_committee", "home_visit"]
    foreign = await svc.client.get(
        f"/v1/cases/{case['id']}/persuasions", headers=tokens.headers("teacher", SCHOOL_B)
    )
    assert foreign.status_code == 404


async def test_report_on_time_once_and_overdue_sweep(start_service, tokens, monkeypatch):
    svc = await start_service("casework", report_due_workdays=10)
    h = tokens.headers("school", SCHOOL_A)
    suspected = await open_case(svc, h)
    r = await svc.client.post(f"/v1/cases/{suspected['id']}/report", json=REPORT, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "case_not_confirmed"

    late = await open_case(svc, h, detected_on="2026-10-09")
    await move(svc, h, late["id"], "confirmed", on="2026-10-12", **ENTRY_FIELDS["confirmed"])
    timely = await open_case(svc, h, detected_on="2026-11-13")
    confirmed = await move(svc, h, timely["id"], "confirmed", on="2026-11-16", **ENTRY_FIELDS["confirmed"])
    due = confirmed.json()["report_due"]
    assert due == "2026-11-30"

    async with svc.ctx.db.transaction() as s:
        # 1, unless the service's own sweep (a background loop on the real date, for which the late
        # case is overdue too) got there first: its first round can start after these requests on a
        # loaded machine. Either way the event is published exactly once (the outbox check below).
        assert await publish_overdue_reports(session=s, ctx=svc.ctx, on=dt.date(2026, 11, 26)) in (0, 1)
    async with svc.ctx.db.transaction() as s:
        assert await publish_overdue_reports(session=s, ctx=svc.ctx, on=dt.date(2026, 11, 27)) == 0
    [overdue] = await outbox_events(svc, CaseReportOverdue)
    assert overdue["data"]["case_id"] == late["id"] and overdue["data"]["report_due"] == "2026-10-26"
    town = tokens.headers("town", TOWN_A)
    listed = (await svc.client.get("/v1/cases/reports/overdue", headers=town)).json()["items"]
    assert [c["id"] for c in listed] == [late["id"]] and listed[0]["report_overdue"] is True

    monkeypatch.setattr(reports, "today", lambda: dt.date(2026, 11, 27))  # the server's filing day
    r = await svc.client.post(f"/v1/cases/{timely['id']}/report", json=REPORT, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["filed_on"] == "2026-11-27"
    assert r.json()["on_time"] is True and r.json()["town_code"] == TOWN_A
    assert r.json()["bureau_code"] == "370406D01"
    again = await svc.client.post(f"/v1/cases/{timely['id']}/report", json=REPORT, headers=h)
    assert again.status_code == 409 and again.json()["code"] == "report_already_filed"
    r = await svc.client.post(f"/v1/cases/{late['id']}/report", json=REPORT, headers=h)
    assert r.json()["on_time"] is False
    reported = await outbox_events(svc, CaseReported)
    assert [e["data"]["on_time"] for e in reported] == [True, False]
    assert (await svc.client.get("/v1/cases/reports/overdue", headers=town)).json()["items"] == []
    assert (await svc.client.get(f"/v1/cases/{late['id']}/report", headers=town)).status_code == 200


async def test_the_report_is_filed_on_the_servers_day_not_a_stated_one(start_service, tokens, monkeypatch):
    """A report is on time when the server received it by the due date: a client cannot backdate it (a
    filed_on in the body is refused as an unknown field, nothing is filed)."""
    svc = await start_service("casework", report_due_workdays=10)
    h = tokens.headers("school", SCHOOL_A)
    case = await open_case(svc, h, detected_on="2026-10-09")
    r = await move(svc, h, case["id"], "confirmed", on="2026-10-12", **ENTRY_FIELDS["confirmed"])
    assert r.json()["report_due"] == "2026-10-26"
    monkeypatch.setattr(reports, "today", lambda: dt.date(2026, 11, 27))
    backdated = await svc.client.post(
        f"/v1/cases/{case['id']}/report", json={**REPORT, "filed_on": "2026-10-20"}, headers=h
    )
    assert backdated.status_code == 422, backdated.text
    assert [(e["field"], e["code"]) for e in backdated.json()["errors"]] == [("filed_on", "extra_forbidden")]
    assert (await svc.client.get(f"/v1/cases/{case['id']}/report", headers=h)).status_code == 404
    r = await svc.client.post(f"/v1/cases/{case['id']}/report", json=REPORT, headers=h)
    assert r.status_code == 201, r.text
    assert (r.json()["filed_on"], r.json()["on_time"]) == ("2026-11-27", False)
    [event] = await outbox_events(svc, CaseReported)
    assert (event["data"]["reported_on"], event["data"]["on_time"]) == ("2026-11-27", False)


async def test_care_plan_only_for_returned_students(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    plan = {
        "academic_help": "数学辅导",
        "counselling": "心理谈话",
        "family_care": "申请资助",
        "mentor": "王老师",
        "review_on": "2027-01-10",
    }
    persuading = await case_in(svc, h, "persuading")
    r = await svc.client.put(f"/v1/cases/{persuading['id']}/care-plan", json=plan, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "case_not_returned"
    returned = await case_in(svc, h, "returned")
    r = await svc.client.put(f"/v1/cases/{returned['id']}/care-plan", json=plan, headers=h)
    assert r.status_code == 200 and r.json()["version"] == 1
    r = await svc.client.put(
        f"/v1/cases/{returned['id']}/care-plan", json={**plan, "mentor": "李老师"}, headers=h
    )
    assert r.json()["version"] == 2
    got = await svc.client.get(
        f"/v1/cases/{returned['id']}/care-plan", headers=tokens.headers("teacher", SCHOOL_A)
    )
    assert got.json()["mentor"] == "李老师"


async def test_a_reopened_case_files_the_report_of_its_new_episode(start_service, tokens):
    """A relapse reopens the case and clears its report date: the reconfirmed case files a report of its
    own (one per episode), which GET /report answers; the first episode's stays readable, and the case
    is neither listed nor published as overdue."""
    svc = await start_service("casework", attendance_days_for_closure=1)
    h = tokens.headers("school", SCHOOL_A)
    back = semesters.today() - dt.timedelta(days=5)
    case = await case_in(svc, h, "confirmed", on=back.isoformat())
    first = await svc.client.post(f"/v1/cases/{case['id']}/report", json=REPORT, headers=h)
    assert first.status_code == 201, first.text
    for step in ("persuading", "returned"):
        assert (await move(svc, h, case["id"], step, on=back.isoformat())).status_code == 200
    await enrol(svc, student_id=case["student_id"], child_id=case["child_id"])
    r = await svc.client.post(
        f"/v1/cases/{case['id']}/attendance",
        json={"from_date": back.isoformat(), "to_date": back.isoformat(), "days_attended": 1},
        headers=h,
    )
    assert r.status_code == 201, r.text
    closed = await move(svc, h, case["id"], "closed", closure_reason="returned", on=back.isoformat())
    assert closed.status_code == 200, closed.text
    # A new dropout signal inside the relapse watch, detected after the closure, reopens the case (a
    # school's report is one).
    again = await svc.client.post(
        "/v1/cases", json={"child_id": case["child_id"], "school_code": SCHOOL_A}, headers=h
    )
    assert again.status_code == 201, again.text
    assert again.json()["id"] == case["id"] and again.json()["reopen_count"] == 1
    r = await move(svc, h, case["id"], "confirmed", **ENTRY_FIELDS["confirmed"])
    assert r.status_code == 200 and r.json()["reported_on"] is None

    second = await svc.client.post(
        f"/v1/cases/{case['id']}/report", json={**REPORT, "result": "再次辍学，继续劝返"}, headers=h
    )
    assert second.status_code == 201, second.text
    assert second.json()["episode"] == 1
    repeat = await svc.client.post(f"/v1/cases/{case['id']}/report", json=REPORT, headers=h)
    assert repeat.status_code == 409 and repeat.json()["code"] == "report_already_filed"
    current = await svc.client.get(f"/v1/cases/{case['id']}/report", headers=h)
    assert (current.json()["episode"], current.json()["result"]) == (1, "再次辍学，继续劝返")
    older = await svc.client.get(f"/v1/cases/{case['id']}/report", params={"episode": 0}, headers=h)
    assert (older.json()["episode"], older.json()["result"]) == (0, REPORT["result"])
    assert (
        await svc.client.get(f"/v1/cases/{case['id']}/report", params={"episode": 2}, headers=h)
    ).status_code == 404
    assert (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()["report_overdue"] is False
    listed = (await svc.client.get("/v1/cases/reports/overdue", headers=h)).json()["items"]
    assert case["id"] not in [c["id"] for c in listed]
    async with svc.ctx.db.transaction() as s:
        later = semesters.today() + dt.timedelta(days=90)
        await publish_overdue_reports(session=s, ctx=svc.ctx, on=later)
    assert case["id"] not in [e["data"]["case_id"] for e in await outbox_events(svc, CaseReportOverdue)]
    reported = [e["data"]["case_id"] for e in await outbox_events(svc, CaseReported)]
    assert reported.count(case["id"]) == 2


async def test_attendance_periods_neither_overlap_nor_end_after_today(start_service, tokens):
    """Closure as returned counts the days of the confirmed periods: a period overlapping one already
    confirmed since the return would count its days twice (409), and days after today cannot have been
    attended yet (422)."""
    svc = await start_service("casework", attendance_days_for_closure=20)
    h = tokens.headers("school", SCHOOL_A)
    back = semesters.today() - dt.timedelta(days=30)
    case = await case_in(svc, h, "persuading", on=back.isoformat())
    r = await move(svc, h, case["id"], "returned", on=back.isoformat())
    assert r.status_code == 200, r.text

    async def confirm(start: int, end: dt.date | int, days: int):
        to = end if isinstance(end, dt.date) else back + dt.timedelta(days=end)
        body = {"from_date": (back + dt.timedelta(days=start)).isoformat(), "to_date": to.isoformat()}
        return await svc.client.post(
            f"/v1/cases/{case['id']}/attendance", json={**body, "days_attended": days}, headers=h
        )

    assert (await confirm(0, 9, 8)).json()["total_days"] == 8
    for start, end in ((5, 14), (0, 9), (9, 9), (0, 29)):
        r = await confirm(start, end, 1)
        assert r.status_code == 409, (start, end, r.text)
        body = r.json()
        assert body["code"] == "attendance_overlaps"
        assert (body["confirmed_from"], body["confirmed_to"]) == (
            back.isoformat(),
            (back + dt.timedelta(days=9)).isoformat(),
        )
    assert (await confirm(10, 19, 8)).json()["total_days"] == 16
    tomorrow = semesters.today() + dt.timedelta(days=1)
    r = await confirm(20, tomorrow, 3)
    assert r.status_code == 422 and r.json()["code"] == "attendance_in_future"
    assert [e["field"] for e in r.json()["errors"]] == ["to_date"]
    r = await confirm(20, semesters.today(), 3)
    assert r.status_code == 201 and r.json()["total_days"] == 19
    await enrol(svc, student_id=case["student_id"], child_id=case["child_id"])
    r = await move(svc, h, case["id"], "closed", closure_reason="returned")
    assert r.status_code == 409 and r.json()["days_confirmed"] == 19
