"""Deferral/exemption applications and placements of disabled children."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from enrollment.placements import service as placements
from tests.enrollment.conftest import (
    BUREAU,
    DISTRICT_A,
    DISTRICT_B,
    DPF,
    SCHOOL_A,
    SCHOOL_B,
    enroll,
    home_delivery,
    register_child,
    start,
)


@pytest.mark.usefixtures("in_september")
async def test_deferral_window_decision_and_expiry(start_service, event_publisher, tokens):
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    district = tokens.headers("school_district", DISTRICT_A)
    body = {
        "child_id": kid.child_id,
        "kind": "exemption",
        "reason": "disability",
        "evidence": ["assess/9"],
        "filed_on": "2026-09-04",
    }
    other = await svc.client.post(
        "/v1/deferral-applications",
        headers=tokens.headers("school_district", DISTRICT_B),
        json={**body, "filed_on": "2026-09-04"},
    )
    assert other.status_code == 404
    app = (
        await svc.client.post(
            "/v1/deferral-applications", headers=district, json={**body, "filed_on": "2026-09-04"}
        )
    ).json()
    assert (
        await svc.client.post(
            f"/v1/deferral-applications/{app['id']}/decision",
            headers=district,
            json={"approve": True, "on": "2026-09-10"},
        )
    ).status_code == 403
    bad = await svc.client.post(
        f"/v1/deferral-applications/{app['id']}/decision",
        headers=tokens.headers("bureau", BUREAU),
        json={"approve": True, "on": "2026-09-10"},
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_validity"
    ok = await svc.client.post(
        f"/v1/deferral-applications/{app['id']}/decision",
        headers=tokens.headers("bureau", BUREAU),
        json={"approve": True, "on": "2026-09-10", "valid_from": "2026-09-01", "valid_until": "2027-08-31"},
    )
    assert ok.json()["state"] == "approved" and ok.json()["in_force"] is True
    again = await svc.client.post(
        f"/v1/deferral-applications/{app['id']}/decision",
        headers=tokens.headers("bureau", BUREAU),
        json={"approve": False, "on": "2026-09-11"},
    )
    assert again.status_code == 409
    after = await svc.client.get("/v1/deferral-applications?on=2027-09-01", headers=district)
    assert after.json()["items"][0]["in_force"] is False  # expired: the child is expected at school again


async def test_home_delivery_placement_and_session_log(start_service, event_publisher, tokens, monkeypatch):
    monkeypatch.setattr(
        placements, "today_in_china", lambda: dt.date(2026, 11, 20)
    )  # the term log ends today
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    sid = (await enroll(svc, tokens, kid)).json()["id"]
    body = home_delivery(kid, sid)
    p = await svc.client.post("/v1/placements", headers=tokens.headers("dept_dpf", DPF), json=body)
    assert p.status_code == 201, p.text
    pid = p.json()["id"]
    school = tokens.headers("school", SCHOOL_A)
    for day in ("2026-09-09", "2026-09-16"):
        r = await svc.client.post(
            f"/v1/placements/{pid}/sessions",
            headers=school,
            json={"term": "2026-autumn", "held_on": day, "teacher_ref": "T-1", "minutes": 90},
        )
        assert r.status_code == 201
    dup = await svc.client.post(
        f"/v1/placements/{pid}/sessions",
        headers=school,
        json={"term": "2026-autumn", "held_on": "2026-09-16", "teacher_ref": "T-1", "minutes": 90},
    )
    assert dup.status_code == 409
    terms = (await svc.client.get(f"/v1/placements/{pid}/terms", headers=school)).json()
    assert terms == [{"term": "2026-autumn", "planned": 3, "delivered": 2, "shortfall": 1}]
    # a placement needs the child's own active record at the receiving school
    stranger = await register_child(svc, event_publisher)
    wrong = await svc.client.post(
        "/v1/placements",
        headers=tokens.headers("dept_dpf", DPF),
        json={**body, "child_id": stranger.child_id},
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "unknown_student"


async def test_the_term_log_lists_every_term_of_the_placement_with_nothing_delivered_as_zero(
    start_service, event_publisher, tokens, monkeypatch
):
    """Every term from the placement's start to its end (or today) is listed, in calendar order, a term
    without a single session as delivered 0 (before, only terms with a session appeared)."""
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    sid = (await enroll(svc, tokens, kid)).json()["id"]
    dpf, school = tokens.headers("dept_dpf", DPF), tokens.headers("school", SCHOOL_A)
    body = home_delivery(kid, sid, planned_sessions_per_term=4, starts_on="2025-03-03", ends_on="2026-07-10")
    ended = (await svc.client.post("/v1/placements", headers=dpf, json=body)).json()["id"]
    for day in ("2025-10-09", "2025-10-16"):
        r = await svc.client.post(
            f"/v1/placements/{ended}/sessions",
            headers=school,
            json={"term": "2025-autumn", "held_on": day, "teacher_ref": "T-1", "minutes": 90},
        )
        assert r.status_code == 201, r.text
    terms = (await svc.client.get(f"/v1/placements/{ended}/terms", headers=school)).json()
    assert terms == [
        {"term": "2025-spring", "planned": 4, "delivered": 0, "shortfall": 4},
        {"term": "2025-autumn", "planned": 4, "delivered": 2, "shortfall": 2},
        {"term": "2026-spring", "planned": 4, "delivered": 0, "shortfall": 4},
    ]
    # open-ended: up to today (the server's day in China)
    monkeypatch.setattr(placements, "today_in_china", lambda: dt.date(2027, 3, 5))
    open_ended = {**body, "starts_on": "2026-08-20", "ends_on": None}
    running = (await svc.client.post("/v1/placements", headers=dpf, json=open_ended)).json()["id"]
    terms = (await svc.client.get(f"/v1/placements/{running}/terms", headers=school)).json()
    assert [(t["term"], t["delivered"]) for t in terms] == [("2026-autumn", 0), ("2027-spring", 0)]


async def test_the_filing_window_is_checked_on_the_servers_day_and_filed_on_is_never_in_the_future(
    start_service, event_publisher, tokens, server_day
):
    """The September window is the day the application reaches the server (China's day): a form dated in
    September but received in October is late; a date after today is refused; without a date it is
    today's."""
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    district = tokens.headers("school_district", DISTRICT_A)
    body = {"child_id": kid.child_id, "kind": "deferral", "reason": "illness", "evidence": ["med/1"]}

    async def file(**extra: str):  # type: ignore[no-untyped-def]
        return await svc.client.post("/v1/deferral-applications", headers=district, json={**body, **extra})

    server_day(dt.date(2026, 10, 20))
    for extra in ({"filed_on": "2026-09-04"}, {}):  # backdated into September, or undated
        late = await file(**extra)
        assert late.status_code == 422 and late.json()["code"] == "outside_filing_window", late.text
    server_day(dt.date(2026, 9, 10))
    future = await file(filed_on="2026-09-15")
    assert future.status_code == 422 and future.json()["code"] == "filed_on_in_future"
    assert future.json()["errors"][0]["field"] == "filed_on"
    same_day = await file(filed_on="2026-09-10")
    assert same_day.status_code == 201 and same_day.json()["filed_on"] == "2026-09-10"
    undated = await file()
    assert undated.status_code == 201 and undated.json()["filed_on"] == "2026-09-10"
    form = await file(filed_on="2026-08-28")  # the guardian's form signed before the window: received in it
    assert form.status_code == 201 and form.json()["filed_on"] == "2026-08-28"


async def test_the_demo_stack_files_on_a_stated_past_day(start_service, event_publisher, tokens, server_day):
    """``ENROLLMENT_SIMULATION`` (the demo's stack only): a past filed_on is the filing day, its window
    checked on it; a future one is still refused."""
    svc = await start(start_service, simulation=True)
    kid = await register_child(svc, event_publisher)
    district = tokens.headers("school_district", DISTRICT_A)
    body = {"child_id": kid.child_id, "kind": "deferral", "reason": "illness", "evidence": ["med/1"]}
    server_day(dt.date(2026, 11, 29))
    played = await svc.client.post(
        "/v1/deferral-applications", headers=district, json={**body, "filed_on": "2026-09-03"}
    )
    assert played.status_code == 201, played.text
    for day, code in (("2026-10-03", "outside_filing_window"), ("2026-12-01", "filed_on_in_future")):
        r = await svc.client.post(
            "/v1/deferral-applications", headers=district, json={**body, "filed_on": day}
        )
        assert r.status_code == 422 and r.json()["code"] == code


async def test_a_session_log_entry_is_audited_and_its_dates_checked(
    start_service, event_publisher, tokens, monkeypatch
):
    """Logging a 送教上门 session is a write about a child: audited like the others. ``held_on`` must not be
    after today (China's day) nor outside the placement's period, and the term must be the semester that
    contains ``held_on``; each refusal has its own 422 code and nothing is stored."""
    monkeypatch.setattr(placements, "today_in_china", lambda: dt.date(2026, 11, 20))
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    sid = (await enroll(svc, tokens, kid)).json()["id"]
    placement = await svc.client.post(
        "/v1/placements",
        headers=tokens.headers("dept_dpf", DPF),
        json=home_delivery(kid, sid, ends_on="2027-01-15"),
    )
    pid = placement.json()["id"]
    school = tokens.headers("school", SCHOOL_A)
    audit = svc.spec.tables.audit

    async def audited() -> list[tuple[str, str, str]]:
        async with svc.ctx.db.transaction() as s:
            rows = await s.execute(
                select(audit.c.action, audit.c.resource_type, audit.c.detail).where(
                    audit.c.resource_type == "teaching_session"
                )
            )
            return [tuple(r) for r in rows.all()]

    async def log(term: str, held_on: str):  # type: ignore[no-untyped-def]
        return await svc.client.post(
            f"/v1/placements/{pid}/sessions",
            headers=school,
            json={"term": term, "held_on": held_on, "teacher_ref": "T-1", "minutes": 90},
        )

    for term, held_on, code in (
        ("2026-autumn", "2026-11-21", "session_in_future"),  # tomorrow
        ("2027-spring", "2030-03-01", "session_in_future"),
        ("2026-spring", "2026-06-10", "session_outside_placement"),  # before the placement starts
        ("2019-spring", "2026-10-14", "session_term_mismatch"),
        ("2027-spring", "2026-10-14", "session_term_mismatch"),
    ):
        r = await log(term, held_on)
        assert r.status_code == 422 and r.json()["code"] == code, (term, held_on, r.text)
        assert r.json()["errors"][0]["field"] in ("held_on", "term")
    assert await audited() == []
    ok = await log("2026-autumn", "2026-11-20")  # today
    assert ok.status_code == 201, ok.text
    assert await audited() == [("create", "teaching_session", f"placement:{pid}")]
    terms = (await svc.client.get(f"/v1/placements/{pid}/terms", headers=school)).json()
    assert terms == [{"term": "2026-autumn", "planned": 3, "delivered": 1, "shortfall": 2}]


async def test_a_session_after_the_placement_ended_is_refused(start_service, event_publisher, tokens):
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    sid = (await enroll(svc, tokens, kid)).json()["id"]
    pid = (
        await svc.client.post(
            "/v1/placements",
            headers=tokens.headers("dept_dpf", DPF),
            json=home_delivery(kid, sid, starts_on="2025-09-01", ends_on="2025-12-31"),
        )
    ).json()["id"]
    r = await svc.client.post(
        f"/v1/placements/{pid}/sessions",
        headers=tokens.headers("school", SCHOOL_A),
        json={"term": "2026-spring", "held_on": "2026-03-04", "teacher_ref": "T-1", "minutes": 60},
    )
    assert r.status_code == 422 and r.json()["code"] == "session_outside_placement", r.text


@pytest.mark.usefixtures("in_september")
async def test_a_school_files_for_its_own_pupil_and_sees_only_what_it_filed(
    start_service, event_publisher, tokens
):
    """The notice routes parents' applications to the school district or the school: a school (deferral:file)
    files for a child with an active record there, and sees that application; any other child is 404 to it,
    and it does not see the applications the school district filed."""
    svc = await start(start_service)
    pupil = await register_child(svc, event_publisher, district=DISTRICT_A)
    await enroll(svc, tokens, pupil)
    neighbour = await register_child(
        svc, event_publisher, district=DISTRICT_A
    )  # same district, no record here
    elsewhere = await register_child(svc, event_publisher, district=DISTRICT_A)
    await enroll(svc, tokens, elsewhere, school=SCHOOL_B)
    school, district = tokens.headers("school", SCHOOL_A), tokens.headers("school_district", DISTRICT_A)
    body = {"kind": "deferral", "reason": "illness", "evidence": ["med/1"]}

    filed = await svc.client.post(
        "/v1/deferral-applications", headers=school, json={**body, "child_id": pupil.child_id}
    )
    assert filed.status_code == 201, filed.text
    for child in (neighbour, elsewhere):
        r = await svc.client.post(
            "/v1/deferral-applications", headers=school, json={**body, "child_id": child.child_id}
        )
        assert r.status_code == 404 and r.json()["code"] == "child_not_found", r.text
    other_school = await svc.client.post(
        "/v1/deferral-applications",
        headers=tokens.headers("school", SCHOOL_B),
        json={**body, "child_id": pupil.child_id},
    )
    assert other_school.status_code == 404
    by_district = await svc.client.post(
        "/v1/deferral-applications", headers=district, json={**body, "child_id": neighbour.child_id}
    )
    assert by_district.status_code == 201, by_district.text

    seen = (await svc.client.get("/v1/deferral-applications", headers=school)).json()["items"]
    assert [a["id"] for a in seen] == [filed.json()["id"]]
    assert (
        await svc.client.get("/v1/deferral-applications", headers=tokens.headers("school", SCHOOL_B))
    ).json()["items"] == []
    district_sees = (await svc.client.get("/v1/deferral-applications", headers=district)).json()["items"]
    assert sorted(a["id"] for a in district_sees) == sorted([filed.json()["id"], by_district.json()["id"]])


@pytest.mark.usefixtures("in_september")
async def test_a_deferral_lasts_at_most_until_the_same_date_one_year_later(
    start_service, event_publisher, tokens
):
    """At most one school year: until the same calendar date one year later (29 February → 28 February),
    as a suspension. A flat 366 days let a year and a day through in a common year."""
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    body = {"child_id": kid.child_id, "kind": "deferral", "reason": "illness", "evidence": ["med/1"]}
    filed = await svc.client.post(
        "/v1/deferral-applications",
        headers=tokens.headers("school_district", DISTRICT_A),
        json={**body, "filed_on": "2026-09-04"},
    )
    assert filed.status_code == 201, filed.text
    url = f"/v1/deferral-applications/{filed.json()['id']}/decision"

    async def decide(valid_from: str, valid_until: str) -> tuple[int, str | None]:
        answer = await svc.client.post(
            url,
            headers=tokens.headers("bureau", BUREAU),
            json={"approve": True, "on": "2026-09-10", "valid_from": valid_from, "valid_until": valid_until},
        )
        return answer.status_code, answer.json().get("code")

    assert await decide("2026-09-01", "2027-09-02") == (422, "invalid_validity")  # 366 days: a year and a day
    assert await decide("2028-02-29", "2029-03-01") == (422, "invalid_validity")  # 366 days past 28 Feb 2029
    assert await decide("2027-03-01", "2028-03-01") == (200, None)  # 366 days across 29 February: one year
