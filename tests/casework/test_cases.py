"""Cases: the state machine (every allowed and refused transition), proofs of closure, jurisdiction."""

from __future__ import annotations

import datetime as dt

import pytest

from baoxue.contracts.casework import CaseClosed, CaseConfirmed, CaseRelapsed, CaseReturned
from casework import semesters
from casework.cases.service import Signal, receive_signal
from tests.casework.helpers import (
    ENTRY_FIELDS,
    SCHOOL_A,
    SCHOOL_B,
    TOWN_A,
    TOWN_B,
    attend,
    case_in,
    enrol,
    exclude,
    move,
    new_child,
    open_case,
    outbox_events,
)

STATES = ["suspected", "confirmed", "persuading", "returned", "placed", "escalated", "closed"]
# The state machine, written out here rather than read from casework.cases.states (the table under test).
# The issue: suspected → confirmed → persuading → returned | placed | escalated | closed. Besides those,
# the moves the service deliberately allows, each with its reason:
ALLOWED: dict[str, set[str]] = {
    # a suspicion that proves wrong (closed as unfounded, with an active student record), or an excluded
    # child (deceased / moved out: the registry's ChildStatusChanged closes any open case)
    "suspected": {"confirmed", "closed"},
    # an excluded child
    "confirmed": {"persuading", "closed"},
    # the four outcomes of persuasion (closed: excluded)
    "persuading": {"returned", "placed", "escalated", "closed"},
    # closure (销号) once verifiably back; persuading again when the child stops attending before closure
    # (not in the wording: see states.py; a new dropout signal only attaches to an open case)
    "returned": {"closed", "persuading"},
    # closure as placed (or excluded)
    "placed": {"closed"},
    # "the case then follows the ladder's outcomes published by notify": returned, placed, or back to the
    # school (withdrawn / closed ladder, or the school withdraws); closed: excluded
    "escalated": {"returned", "placed", "persuading", "closed"},
    # only a new dropout signal inside the relapse watch reopens a closed case (test_signals)
    "closed": set(),
}
CLOSE_AS = {"suspected": "unfounded", "returned": "returned", "placed": "placed"}


async def _prove_closure(svc, case: dict) -> dict:
    reason = CLOSE_AS.get(case["state"], "excluded")
    if reason in ("unfounded", "returned"):
        await enrol(svc, student_id=case["student_id"], child_id=case["child_id"])
    if reason == "unfounded":
        await attend(svc, svc.headers, case, since=case["opened_on"])
    if reason == "returned":
        r = await svc.client.post(
            f"/v1/cases/{case['id']}/attendance",
            json={"from_date": case["returned_on"], "to_date": case["returned_on"], "days_attended": 1},
            headers=svc.headers,
        )
        assert r.status_code == 201, r.text
    if reason == "excluded":
        await exclude(svc, case["child_id"])
    return {"closure_reason": reason}


@pytest.mark.parametrize("from_state", STATES)
async def test_every_transition_is_allowed_or_refused_with_409(start_service, tokens, from_state):
    svc = await start_service("casework", attendance_days_for_closure=1)
    svc.headers = tokens.headers("school", SCHOOL_A)
    for to_state in STATES:
        case = await case_in(svc, svc.headers, from_state)
        fields = dict(ENTRY_FIELDS.get(to_state, {}))
        if to_state == "closed" and from_state != "closed":
            fields.update(await _prove_closure(svc, case))
        r = await move(svc, svc.headers, case["id"], to_state, **fields)
        if to_state in ALLOWED[from_state]:
            assert r.status_code == 200, (from_state, to_state, r.text)
            assert r.json()["state"] == to_state
        else:
            assert r.status_code == 409, (from_state, to_state, r.text)
            body = r.json()
            assert body["code"] == "transition_not_allowed"
            assert (body["from_state"], body["to_state"]) == (from_state, to_state)
            assert body["allowed"] == sorted(ALLOWED[from_state])
            assert r.headers["content-type"].startswith("application/problem+json")
            # A clear problem: a title, and a detail saying what may be done instead.
            assert body["title"] and body["type"].endswith("/transition_not_allowed")
            if from_state == "closed":
                assert "only a new dropout signal inside its relapse watch reopens it" in body["detail"]
            else:
                assert f"from '{from_state}' to '{to_state}'" in body["detail"]
                assert f"it can move to: {', '.join(sorted(ALLOWED[from_state]))}." in body["detail"]


async def test_confirmation_needs_reason_and_sets_working_day_due_date(start_service, tokens):
    svc = await start_service("casework", report_due_workdays=5)
    h = tokens.headers("school", SCHOOL_A)
    case = await open_case(svc, h, detected_on="2026-09-21")
    r = await move(svc, h, case["id"], "confirmed")
    assert r.status_code == 422 and r.json()["code"] == "transition_field_required"
    # Confirmed on Friday 2026-09-25: Sep 28-30, then Oct 8 and 9 (the National Day holiday Oct 1-7 is skipped).
    r = await move(svc, h, case["id"], "confirmed", on="2026-09-25", **ENTRY_FIELDS["confirmed"])
    assert r.status_code == 200, r.text
    assert r.json()["report_due"] == "2026-10-09"
    [event] = await outbox_events(svc, CaseConfirmed)
    assert event["data"]["report_due"] == "2026-10-09"
    assert "王老师" not in str(event)


async def test_closure_refused_without_active_student_record_or_attendance(start_service, tokens):
    svc = await start_service("casework", attendance_days_for_closure=10)
    h = tokens.headers("school", SCHOOL_A)
    back = semesters.today() - dt.timedelta(days=13)  # attendance is confirmed for days that have passed

    async def returned() -> dict:
        case = await case_in(svc, h, "persuading", on=back.isoformat())
        r = await move(svc, h, case["id"], "returned", on=back.isoformat())
        assert r.status_code == 200, r.text
        return r.json()

    case = await returned()
    r = await move(svc, h, case["id"], "closed", closure_reason="returned")
    assert r.status_code == 409 and r.json()["code"] == "no_active_student_record"
    await enrol(svc, student_id=case["student_id"], child_id=case["child_id"], status="suspended")
    r = await move(svc, h, case["id"], "closed", closure_reason="returned")
    assert r.status_code == 409 and r.json()["code"] == "no_active_student_record"

    period = {"from_date": back.isoformat(), "to_date": (back + dt.timedelta(days=13)).isoformat()}
    r = await svc.client.post(
        f"/v1/cases/{case['id']}/attendance", json={**period, "days_attended": 6}, headers=h
    )
    assert r.status_code == 201 and r.json()["total_days"] == 6
    other = await returned()
    await enrol(svc, student_id=other["student_id"], child_id=other["child_id"])
    r = await move(svc, h, other["id"], "closed", closure_reason="returned")
    assert r.status_code == 409 and r.json()["code"] == "attendance_not_confirmed"
    assert (r.json()["days_confirmed"], r.json()["days_required"]) == (0, 10)
    r = await move(svc, h, other["id"], "closed", closure_reason="placed")
    assert r.status_code == 409 and r.json()["code"] == "closure_reason_not_allowed"
    r = await svc.client.post(
        f"/v1/cases/{other['id']}/attendance", json={**period, "days_attended": 10}, headers=h
    )
    assert r.status_code == 201
    r = await move(svc, h, other["id"], "closed", closure_reason="returned")
    assert r.status_code == 200, r.text
    closed = r.json()
    assert closed["closure_reason"] == "returned" and closed["watch_until"] is not None
    assert [e["data"]["closure_reason"] for e in await outbox_events(svc, CaseClosed)] == ["returned"]


async def test_transition_dates_lie_between_the_last_move_and_today(start_service, tokens):
    """A move's ``on`` may be back-dated (a school records a return a few days late) but not before the
    case's latest transition (its opening, or the move before) and not after the server's day: a return
    dated before the dropout would let attendance older than the dropout close the case, a confirmation
    in the future would push the report deadline out, a back-dated closure would end the relapse watch
    at once. 422 naming the bound; nothing changes."""
    svc = await start_service("casework", attendance_days_for_closure=1)
    h = tokens.headers("school", SCHOOL_A)
    today = semesters.today()

    def day(n: int) -> str:
        return (today + dt.timedelta(days=n)).isoformat()

    case = await open_case(svc, h, detected_on=day(-30))

    async def refused(to: str, on: str, code: str, bound: str, **fields) -> None:
        r = await move(svc, h, case["id"], to, on=on, **{**ENTRY_FIELDS.get(to, {}), **fields})
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["code"] == code and body["errors"] == [{"field": "on", "code": code}]
        assert body["earliest" if code == "transition_date_too_early" else "latest"] == bound
        assert (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()["version"] == version

    version = case["version"]
    await refused("confirmed", day(1), "transition_date_in_future", day(0))
    await refused("confirmed", "2030-01-01", "transition_date_in_future", day(0))
    await refused("confirmed", day(-31), "transition_date_too_early", day(-30))
    await refused("closed", "2024-01-01", "transition_date_too_early", day(-30), closure_reason="excluded")
    r = await move(svc, h, case["id"], "confirmed", on=day(-20), **ENTRY_FIELDS["confirmed"])
    assert r.status_code == 200 and r.json()["confirmed_on"] == day(-20)
    r = await move(svc, h, case["id"], "persuading", on=day(-10))
    assert r.status_code == 200, r.text
    version = r.json()["version"]
    # The audit's case: a return dated before the dropout (or before persuasion began) is refused.
    await refused("returned", day(-40), "transition_date_too_early", day(-10))
    await refused("returned", day(-11), "transition_date_too_early", day(-10))
    r = await move(svc, h, case["id"], "returned", on=day(-5))  # recorded five days late: fine
    assert r.status_code == 200 and r.json()["returned_on"] == day(-5)
    # The child stops attending again; a second return cannot be dated back into the first one, whose
    # attendance would count again.
    r = await move(svc, h, case["id"], "persuading", on=day(-2))
    assert r.status_code == 200, r.text
    version = r.json()["version"]
    await refused("returned", day(-4), "transition_date_too_early", day(-2))
    r = await move(svc, h, case["id"], "returned")  # no date: today
    assert r.status_code == 200 and r.json()["returned_on"] == day(0)


async def test_an_unfounded_closure_needs_confirmed_attendance_since_the_opening(start_service, tokens):
    """Enrollment raises its main signal (four weeks of absence) on a record that stays enrolled, so an
    active student record proves nothing about a suspected dropout: closing it as unfounded needs the
    configured days of attendance confirmed by the school since the case was opened, as a closure as
    returned does since the return (before, an active record alone closed it, with no attendance)."""
    svc = await start_service("casework", attendance_days_for_closure=5)
    h = tokens.headers("school", SCHOOL_A)
    opened = semesters.today() - dt.timedelta(days=20)
    case = await open_case(svc, h, detected_on=opened.isoformat())
    await enrol(svc, student_id=case["student_id"], child_id=case["child_id"])  # enrolled, still absent
    r = await move(svc, h, case["id"], "closed", closure_reason="unfounded")
    assert r.status_code == 409 and r.json()["code"] == "attendance_not_confirmed"
    assert (r.json()["days_confirmed"], r.json()["days_required"]) == (0, 5)
    url = f"/v1/cases/{case['id']}/attendance"

    def period(start: int, end: int, days: int) -> dict:
        return {
            "from_date": (opened + dt.timedelta(days=start)).isoformat(),
            "to_date": (opened + dt.timedelta(days=end)).isoformat(),
            "days_attended": days,
        }

    before = await svc.client.post(url, json=period(-10, 3, 5), headers=h)  # attendance before the dropout
    assert before.status_code == 409 and before.json()["code"] == "attendance_before_opening"
    r = await svc.client.post(url, json=period(0, 6, 4), headers=h)
    assert r.status_code == 201 and (r.json()["total_days"], r.json()["required_days"]) == (4, 5)
    r = await move(svc, h, case["id"], "closed", closure_reason="unfounded")
    assert r.status_code == 409 and r.json()["days_confirmed"] == 4
    assert (await svc.client.post(url, json=period(7, 13, 5), headers=h)).json()["total_days"] == 9
    r = await move(svc, h, case["id"], "closed", closure_reason="unfounded")
    assert r.status_code == 200 and r.json()["closure_reason"] == "unfounded"
    confirmed = await case_in(svc, h, "confirmed")
    r = await svc.client.post(f"/v1/cases/{confirmed['id']}/attendance", json=period(0, 6, 4), headers=h)
    assert r.status_code == 409 and r.json()["code"] == "case_not_returned"


async def test_excluded_closure_needs_the_registry(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    case = await case_in(svc, h, "persuading")
    r = await move(svc, h, case["id"], "closed", closure_reason="excluded")
    assert r.status_code == 409 and r.json()["code"] == "not_excluded"
    await exclude(svc, case["child_id"], "moved_out")
    r = await move(svc, h, case["id"], "closed", closure_reason="excluded")
    assert r.status_code == 200 and r.json()["watch_until"] is None


async def test_one_open_case_per_child_when_opened_by_hand(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    case = await open_case(svc, h)
    again = await svc.client.post(
        "/v1/cases", json={"child_id": case["child_id"], "school_code": SCHOOL_A}, headers=h
    )
    assert again.status_code == 409
    assert again.json()["code"] == "case_already_open" and again.json()["case_id"] == case["id"]


async def test_a_school_opening_a_case_may_leave_out_its_school_code(start_service, tokens):
    """``school_code`` defaults to the caller's own school (a school's body may leave it out); a school
    district, which has no school of its own, names one (422 ``school_required`` otherwise)."""
    svc = await start_service("casework")
    child_id, student_id = new_child()
    r = await svc.client.post(
        "/v1/cases",
        json={"child_id": child_id, "student_id": student_id},
        headers=tokens.headers("school", SCHOOL_A),
    )
    assert r.status_code == 201, r.text
    assert (r.json()["school_code"], r.json()["hukou_town"]) == (SCHOOL_A, TOWN_A)
    other, _ = new_child()
    r = await svc.client.post(
        "/v1/cases", json={"child_id": other}, headers=tokens.headers("school_district", "37040600101")
    )
    assert r.status_code == 422 and r.json()["code"] == "school_required"


async def test_a_school_reporting_a_dropout_before_the_closure_does_not_reopen_the_case(
    start_service, tokens
):
    """A school's report dated on or before the day the child's case was closed is about the episode
    already closed: 409 ``detected_before_closure``, nothing recorded, the case stays closed."""
    svc = await start_service("casework", attendance_days_for_closure=1)
    h = tokens.headers("school", SCHOOL_A)
    closed = await case_in(svc, h, "closed")
    body = {"child_id": closed["child_id"], "student_id": closed["student_id"], "school_code": SCHOOL_A}
    r = await svc.client.post("/v1/cases", json={**body, "detected_on": closed["opened_on"]}, headers=h)
    assert r.status_code == 409 and r.json()["code"] == "detected_before_closure"
    assert closed["closed_on"] == semesters.today().isoformat()
    signals = (await svc.client.get(f"/v1/cases/{closed['id']}/signals", headers=h)).json()
    assert [s["effect"] for s in signals] == ["opened"]


async def test_a_school_opens_cases_for_its_own_students_only(start_service, tokens):
    """A school opens a case by hand for a student the student read model places at it (its enrolled
    record's school, else its record's), or for a child the read model does not know whose hukou is in
    the school's town; another school's student is 403 ``student_of_another_school`` (by record, child
    or ID number), an unknown child of another town 403 ``child_outside_school_area``, nothing opened
    (before, school A opened B's student's case and B never saw it)."""
    svc = await start_service("casework")
    a, b = tokens.headers("school", SCHOOL_A), tokens.headers("school", SCHOOL_B)
    child_id, student_id = new_child()
    id_number = "11010519491231002X"
    blind = svc.ctx.blind_index.of(id_number)
    await enrol(svc, student_id=student_id, child_id=child_id, school_code=SCHOOL_B, id_blind_index=blind)
    for body in (
        {"child_id": child_id, "student_id": student_id, "school_code": SCHOOL_A},
        {"student_id": student_id},
        {"child_id": child_id},
        {"id_number": id_number},
    ):
        r = await svc.client.post("/v1/cases", json=body, headers=a)
        assert r.status_code == 403 and r.json()["code"] == "student_of_another_school", (body, r.text)
    # A record the child left (transferred out of A) does not place it at A while B's is enrolled.
    await enrol(svc, student_id=f"{student_id}-old", child_id=child_id, status="transferred_out")
    r = await svc.client.post("/v1/cases", json={"child_id": child_id}, headers=a)
    assert r.status_code == 403 and r.json()["code"] == "student_of_another_school"
    unknown, _ = new_child()
    r = await svc.client.post("/v1/cases", json={"child_id": unknown, "hukou_town": TOWN_B}, headers=a)
    assert r.status_code == 403 and r.json()["code"] == "child_outside_school_area"
    assert (await svc.client.get("/v1/cases", headers=a)).json()["items"] == []
    r = await svc.client.post("/v1/cases", json={"id_number": id_number}, headers=b)
    assert r.status_code == 201, r.text
    assert (r.json()["school_code"], r.json()["child_id"], r.json()["student_id"]) == (
        SCHOOL_B,
        child_id,
        None,
    )
    r = await svc.client.post("/v1/cases", json={"child_id": unknown}, headers=a)  # hukou: A's town
    assert r.status_code == 201 and r.json()["hukou_town"] == TOWN_A


async def test_a_school_never_learns_of_a_case_it_cannot_see(start_service, tokens):
    """``case_already_open`` names the child's open case to a caller who may see it. A school's own
    student's case kept elsewhere (opened before the student records knew the child), or a case without
    a school of a child of the school's town (the school district's verification found the child out
    of school), becomes the school's: 409 with its id. Any other case the caller cannot see is never
    named: the school's report is recorded on it for those responsible and the answer is 202
    ``recorded``, no case id, state or code (before: 409 ``case_already_open`` told school B that the
    ID number it typed has an open dropout case). The 202 still tells B that the child, whom no school
    has enrolled, is handled elsewhere: that much is not hidden."""
    svc = await start_service("casework")
    a, b = tokens.headers("school", SCHOOL_A), tokens.headers("school", SCHOOL_B)
    id_number = "11010519491231002X"
    first = await svc.client.post("/v1/cases", json={"id_number": id_number}, headers=a)
    assert first.status_code == 201, first.text
    r = await svc.client.post("/v1/cases", json={"id_number": id_number}, headers=b)
    assert r.status_code == 202 and r.json() == {"status": "recorded"}, r.text
    assert first.json()["id"] not in r.text and "ETag" not in r.headers and "Location" not in r.headers
    assert (await svc.client.get("/v1/cases", headers=b)).json()["items"] == []
    kept = (await svc.client.get(f"/v1/cases/{first.json()['id']}", headers=a)).json()
    assert (kept["school_code"], kept["signal_count"]) == (SCHOOL_A, 2)  # B's report is on A's case

    # B's own student, whose case A opened before the student records knew the child.
    child_id, student_id = new_child()
    misplaced = await svc.client.post("/v1/cases", json={"child_id": child_id}, headers=a)
    assert misplaced.status_code == 201, misplaced.text
    await enrol(svc, student_id=student_id, child_id=child_id, school_code=SCHOOL_B)
    r = await svc.client.post("/v1/cases", json={"student_id": student_id}, headers=b)
    assert r.status_code == 409, r.text
    assert (r.json()["code"], r.json()["case_id"]) == ("case_already_open", misplaced.json()["id"])
    moved = await svc.client.get(f"/v1/cases/{misplaced.json()['id']}", headers=b)
    assert moved.status_code == 200 and moved.json()["school_code"] == SCHOOL_B
    assert (await svc.client.get(f"/v1/cases/{misplaced.json()['id']}", headers=a)).status_code == 404

    # The verification's case of an unenrolled child of town A, without a school: school A takes it.
    unenrolled, _ = new_child()
    found = Signal(
        signal_id=f"verification-{unenrolled}",
        signal="verification_not_in_school",
        detected_on=dt.date(2026, 9, 28),
        child_id=unenrolled,
        hukou_town=TOWN_A,
        hukou_school_district="37040600101",
    )
    async with svc.ctx.db.transaction() as s:
        case, _ = await receive_signal(session=s, ctx=svc.ctx, signal=found, actor="enrollment")
    r = await svc.client.post("/v1/cases", json={"child_id": unenrolled}, headers=a)
    assert r.status_code == 409 and r.json()["case_id"] == case.id, r.text
    taken = await svc.client.get(f"/v1/cases/{case.id}", headers=a)
    assert taken.status_code == 200 and taken.json()["school_code"] == SCHOOL_A


async def test_id_number_is_encrypted_and_only_shown_masked(start_service, tokens):
    from sqlalchemy import select

    from casework.cases.models import Case

    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A, purpose="persuasion")
    r = await svc.client.post(
        "/v1/cases", json={"id_number": "11010519491231002X", "school_code": SCHOOL_A}, headers=h
    )
    assert r.status_code == 201, r.text
    assert r.json()["id_number_masked"] != "11010519491231002X"
    assert r.json()["id_number_masked"].startswith("1101")
    async with svc.ctx.db.transaction() as s:
        row = (await s.execute(select(Case))).scalar_one()
    assert "11010519491231002X" not in (row.id_number_enc or "") and row.id_blind_index
    dup = await svc.client.post(
        "/v1/cases",
        json={"id_number": "110105194912310 02x".replace(" ", ""), "school_code": SCHOOL_A},
        headers=h,
    )
    assert dup.status_code == 409
    bad = await svc.client.post(
        "/v1/cases", json={"id_number": "110105194912310021", "school_code": SCHOOL_A}, headers=h
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_id_number"
    assert "110105194912310021" not in bad.text


async def test_jurisdiction_other_school_gets_404_and_empty_lists(start_service, tokens):
    svc = await start_service("casework")
    a = tokens.headers("school", SCHOOL_A)
    case = await open_case(svc, a, hukou_town=TOWN_A)
    teacher_b = tokens.headers("teacher", SCHOOL_B)
    assert (await svc.client.get(f"/v1/cases/{case['id']}", headers=teacher_b)).status_code == 404
    assert (await svc.client.get("/v1/cases/nope", headers=teacher_b)).status_code == 404
    assert (await svc.client.get("/v1/cases", headers=teacher_b)).json()["items"] == []
    assert (await svc.client.get("/v1/cases/ledgers/suspected", headers=teacher_b)).json()["items"] == []
    r = await move(
        svc, tokens.headers("school", SCHOOL_B), case["id"], "confirmed", **ENTRY_FIELDS["confirmed"]
    )
    assert r.status_code == 404
    teacher_a = tokens.headers("teacher", SCHOOL_A)
    assert (await svc.client.get(f"/v1/cases/{case['id']}", headers=teacher_a)).status_code == 200
    assert (
        len((await svc.client.get("/v1/cases", headers=tokens.headers("town", TOWN_A))).json()["items"]) == 1
    )
    assert (await svc.client.get("/v1/cases", headers=tokens.headers("town", TOWN_B))).json()["items"] == []
    assert (
        len(
            (await svc.client.get("/v1/cases", headers=tokens.headers("bureau", "370406D01"))).json()["items"]
        )
        == 1
    )
    # A teacher may read but not move a case.
    r = await move(svc, teacher_a, case["id"], "confirmed", **ENTRY_FIELDS["confirmed"])
    assert r.status_code == 403


async def test_ledgers_and_cursor_pagination(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    suspected = [await open_case(svc, h, detected_on=f"2026-11-{d:02d}") for d in range(1, 6)]
    confirmed = await case_in(svc, h, "persuading")
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await svc.client.get("/v1/cases/ledgers/suspected", params=params, headers=h)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["id"] for c in suspected]
    ledger = (await svc.client.get("/v1/cases/ledgers/confirmed", headers=h)).json()["items"]
    assert [c["id"] for c in ledger] == [confirmed["id"]]
    bad = await svc.client.get("/v1/cases", params={"cursor": "!!"}, headers=h)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_cursor"


async def test_stale_case_update_gets_412_naming_fields(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    case = await open_case(svc, h)
    r = await svc.client.get(f"/v1/cases/{case['id']}", headers=h)
    tag = r.headers["ETag"]
    r1 = await svc.client.patch(
        f"/v1/cases/{case['id']}", json={"analysis": "厌学"}, headers={**h, "If-Match": tag}
    )
    assert r1.status_code == 200 and r1.headers["ETag"] != tag
    r2 = await svc.client.patch(
        f"/v1/cases/{case['id']}", json={"responsible_person": "李老师"}, headers={**h, "If-Match": tag}
    )
    assert r2.status_code == 412
    assert r2.json()["conflicting_fields"] == ["analysis"]
    assert (await svc.client.patch(f"/v1/cases/{case['id']}", json={}, headers=h)).status_code == 428


async def test_a_case_read_is_audited_before_the_answer_and_only_when_found(start_service, tokens):
    """GET /v1/cases/{id} writes who, which case, when, why and the trace into the audit log, committed
    by the time the answer arrives (read here through another connection); a read outside the caller's
    jurisdiction or of an unknown case is 404 and writes nothing; the entries seal into an intact chain."""
    from sqlalchemy import select

    svc = await start_service("casework")
    case = await open_case(svc, tokens.headers("school", SCHOOL_A), hukou_town=TOWN_A)
    table = svc.ctx.audit.table

    async def reads() -> list[dict]:
        async with svc.ctx.db.transaction() as s:
            rows = (await s.execute(select(table).where(table.c.action == "read"))).mappings().all()
        return [dict(r) for r in rows]

    before = await reads()
    teacher_a = tokens.headers("teacher", SCHOOL_A, sub="t-a-7", purpose="home-visit-check")
    r = await svc.client.get(f"/v1/cases/{case['id']}", headers=teacher_a)
    assert r.status_code == 200 and r.json()["id"] == case["id"] and r.headers["ETag"]
    entries = await reads()
    assert len(entries) == len(before) + 1
    entry = entries[-1]
    assert (entry["actor"], entry["actor_org"], entry["roles"]) == ("t-a-7", SCHOOL_A, "teacher")
    assert (entry["resource_type"], entry["resource_ids"], entry["purpose"]) == (
        "case",
        case["id"],
        "home-visit-check",
    )
    assert entry["trace_id"] == r.headers["X-Trace-Id"] and entry["at"] is not None
    assert entry["detail"] is None

    teacher_b = tokens.headers("teacher", SCHOOL_B, purpose="x")
    assert (await svc.client.get(f"/v1/cases/{case['id']}", headers=teacher_b)).status_code == 404
    assert (await svc.client.get("/v1/cases/no-such-case", headers=teacher_a)).status_code == 404
    assert len(await reads()) == len(entries)

    await svc.ctx.audit.seal(svc.ctx.db)
    assert (await svc.ctx.audit.verify_chain(svc.ctx.db)).intact


async def test_a_case_edit_refuses_null_for_planned_measures(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    case = await open_case(svc, h, planned_measures=["班主任家访"], analysis="厌学")
    url, tag = f"/v1/cases/{case['id']}", f'W/"{case["version"]}"'
    r = await svc.client.patch(url, json={"planned_measures": None}, headers={**h, "If-Match": tag})
    assert r.status_code == 422, r.text
    assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [("planned_measures", "null_not_allowed")]
    cleared = await svc.client.patch(url, json={"analysis": None}, headers={**h, "If-Match": tag})
    assert cleared.status_code == 200 and cleared.json()["analysis"] is None
    assert cleared.json()["planned_measures"] == ["班主任家访"]


@pytest.mark.parametrize("state", ["confirmed", "persuading", "returned", "placed", "escalated"])
async def test_a_confirmed_case_keeps_its_reason_and_responsible_person(start_service, tokens, state):
    """Every dropout has one case, one responsible person and a reason category: once confirmed, an
    edit that empties either is a 422 problem naming the field, and nothing changes."""
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    case = await case_in(svc, h, state)
    url = f"/v1/cases/{case['id']}"
    for body, fields in (
        ({"reason": None}, ["reason"]),
        ({"responsible_person": None}, ["responsible_person"]),
        ({"responsible_person": "  "}, ["responsible_person"]),
        ({"reason": None, "responsible_person": None, "analysis": "x"}, ["reason", "responsible_person"]),
    ):
        r = await svc.client.patch(url, json=body, headers={**h, "If-Match": f'W/"{case["version"]}"'})
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["code"] == "validation_failed" and problem["status"] == 422
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [
            (f, "null_not_allowed") for f in fields
        ]
        assert all(f"'{f}'" in problem["detail"] for f in fields)
    after = (await svc.client.get(url, headers=h)).json()
    assert (after["reason"], after["responsible_person"], after["analysis"], after["version"]) == (
        case["reason"],
        case["responsible_person"],
        case["analysis"],
        case["version"],
    )
    # Changing them stays possible.
    r = await svc.client.patch(
        url,
        json={"reason": "family_economic", "responsible_person": "李老师"},
        headers={**h, "If-Match": f'W/"{case["version"]}"'},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["reason"], r.json()["responsible_person"]) == ("family_economic", "李老师")


async def test_a_suspected_case_may_still_clear_its_reason_and_responsible_person(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    case = await open_case(svc, h, reason="learning_weariness", responsible_person="王老师")
    r = await svc.client.patch(
        f"/v1/cases/{case['id']}",
        json={"reason": None, "responsible_person": None},
        headers={**h, "If-Match": f'W/"{case["version"]}"'},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["reason"], r.json()["responsible_person"]) == (None, None)
    # Confirming then needs them again.
    r = await move(svc, h, case["id"], "confirmed")
    assert r.status_code == 422 and r.json()["code"] == "transition_field_required"


async def test_the_transition_endpoint_documents_every_move_and_refusal(start_service):
    """The case endpoints' descriptions give the state machine as it is, including the deliberate
    returned → persuading (a child who stops attending again before closure), and every refusal."""
    svc = await start_service("casework")
    spec = (await svc.client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/cases/{case_id}/transitions"]["post"]
    description = operation["description"]
    for source, targets in ALLOWED.items():
        if targets:
            assert f"{source} → {' | '.join(sorted(targets))}" in description, source
    assert "**returned → persuading** when a child who returned stops attending again" in description
    assert "reopen a case" not in description and "A closed case is not moved" in description
    refusals = " ".join(r["description"] for code, r in operation["responses"].items() if code != "200")
    for code in (
        "transition_not_allowed",
        "transition_field_required",
        "closure_reason_not_allowed",
        "no_active_student_record",
        "attendance_not_confirmed",
        "placement_not_recorded",
        "not_excluded",
        "conflicting_fields",
    ):
        assert code in refusals, code
    to = spec["components"]["schemas"]["TransitionRequest"]["properties"]["to"]
    assert "returned → persuading" in to["description"]
    patch = spec["paths"]["/v1/cases/{case_id}"]["patch"]
    assert "`reason` or `responsible_person`" in patch["description"] and "422" in patch["responses"]


async def test_a_returned_child_who_stops_attending_again_publishes_the_relapse(start_service, tokens):
    """Returned → persuading (the child stopped attending again before closure) publishes CaseRelapsed,
    ids and codes only, with the move's date and the case's version as its sequence, so that notify no
    longer counts the child as returned and starts the new episode's ladder. A return after it is
    published again; confirmed → persuading publishes nothing (before, the relapse published nothing)."""
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    case = await case_in(svc, h, "returned", on="2026-11-10")
    r = await move(svc, h, case["id"], "persuading", on="2026-11-20", note="又不来上学了")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "persuading"
    [relapsed] = await outbox_events(svc, CaseRelapsed)
    assert relapsed["subject"] == case["id"] and relapsed["sequence"] == r.json()["version"]
    assert relapsed["data"] == {
        "case_id": case["id"],
        "child_id": case["child_id"],
        "school_code": SCHOOL_A,
        "hukou_town": TOWN_A,
        "state": "persuading",
        "reason": ENTRY_FIELDS["confirmed"]["reason"],
        "relapsed_on": "2026-11-20",
    }
    back = await move(svc, h, case["id"], "returned", on="2026-11-27")
    assert back.status_code == 200, back.text
    returns = await outbox_events(svc, CaseReturned)
    assert [e["data"]["returned_on"] for e in returns][-1] == "2026-11-27"
    assert returns[-1]["sequence"] > relapsed["sequence"]
    assert len(await outbox_events(svc, CaseRelapsed)) == 1
