"""Dropout signals from schools: absence reports and junior-3 leavers to vocational school."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from enrollment.signals import absence
from enrollment.signals.sweep import sweep_once
from tests.enrollment.conftest import SCHOOL_A, SCHOOL_B, enroll, make_id, outbox_events, start

VOCATIONAL = "37040600101002"


async def test_four_weeks_unexcused_absence_raises_once(start_service, tokens):
    svc = await start(start_service)
    a = (await enroll(svc, tokens, make_id())).json()["id"]
    b = (await enroll(svc, tokens, make_id())).json()["id"]
    h = tokens.headers("school", SCHOOL_A)
    report = {
        "batch_id": "A-2026-W41",
        "school_code": SCHOOL_A,
        "reported_on": "2026-10-09",
        "lines": [
            {"student_id": a, "unexcused_since": "2026-09-11", "unexcused_days": 20},
            {"student_id": b, "unexcused_since": "2026-09-12", "unexcused_days": 19},
        ],
    }
    r = await svc.client.post("/v1/absence-reports", headers=h, json=report)
    assert r.status_code == 200 and r.json()["signals_raised"] == 1  # 28 days for a, 27 for b
    replay = await svc.client.post("/v1/absence-reports", headers=h, json=report)
    assert replay.json()["replayed"] is True
    later = {  # a week on, both runs continue: five more school days each
        **report,
        "batch_id": "A-2026-W42",
        "reported_on": "2026-10-16",
        "lines": [{**line, "unexcused_days": line["unexcused_days"] + 5} for line in report["lines"]],
    }
    assert (await svc.client.post("/v1/absence-reports", headers=h, json=later)).json()[
        "signals_raised"
    ] == 1  # only b
    signals = await outbox_events(svc, "dropout_suspected")
    assert sorted(s["student_id"] for s in signals) == sorted([a, b])
    assert {s["signal"] for s in signals} == {"absence_four_weeks"}
    foreign = await svc.client.post(
        "/v1/absence-reports",
        headers=tokens.headers("school", SCHOOL_B),
        json={**report, "batch_id": "B-1", "school_code": SCHOOL_B},
    )
    assert foreign.status_code == 422 and foreign.json()["code"] == "unknown_student"
    other = await svc.client.post(
        "/v1/absence-reports", headers=tokens.headers("school", SCHOOL_B), json=report
    )
    assert other.status_code == 404


async def test_absence_batches_of_two_schools_with_the_same_batch_id_are_both_applied(start_service, tokens):
    """A batch id is the school's own: school B's "2026-W41" is not a replay of school A's."""
    svc = await start(start_service)
    a = (await enroll(svc, tokens, make_id())).json()["id"]
    b = (await enroll(svc, tokens, make_id(), school=SCHOOL_B)).json()["id"]

    def report(school: str, student: str) -> dict[str, object]:
        return {
            "batch_id": "2026-W41",
            "school_code": school,
            "reported_on": "2026-10-09",
            "lines": [{"student_id": student, "unexcused_since": "2026-09-11", "unexcused_days": 20}],
        }

    for school, student in ((SCHOOL_A, a), (SCHOOL_B, b)):
        r = await svc.client.post(
            "/v1/absence-reports", headers=tokens.headers("school", school), json=report(school, student)
        )
        assert r.status_code == 200, r.text
        assert (r.json()["replayed"], r.json()["signals_raised"]) == (False, 1)
    replay = await svc.client.post(
        "/v1/absence-reports", headers=tokens.headers("school", SCHOOL_B), json=report(SCHOOL_B, b)
    )
    assert (replay.json()["replayed"], replay.json()["signals_raised"]) == (True, 0)
    signals = await outbox_events(svc, "dropout_suspected")
    assert sorted(s["student_id"] for s in signals) == sorted([a, b])


async def test_vocational_leaver_unconfirmed_or_lost_is_a_hidden_dropout(start_service, tokens):
    svc = await start(start_service)
    h = tokens.headers("school", SCHOOL_A)
    young = (await enroll(svc, tokens, make_id(), grade=8)).json()["id"]
    assert (
        await svc.client.post(
            f"/v1/students/{young}/vocational-leaver",
            headers=h,
            json={"vocational_school": VOCATIONAL, "left_on": "2027-03-01"},
        )
    ).status_code == 409
    s1 = (await enroll(svc, tokens, make_id(), grade=9)).json()["id"]
    s2 = (await enroll(svc, tokens, make_id(), grade=9)).json()["id"]
    s3 = (await enroll(svc, tokens, make_id(), grade=9)).json()["id"]
    leavers = []
    for sid in (s1, s2, s3):
        r = await svc.client.post(
            f"/v1/students/{sid}/vocational-leaver",
            headers=h,
            json={"vocational_school": VOCATIONAL, "left_on": "2027-03-01"},
        )
        assert r.status_code == 201, r.text
        leavers.append(r.json())
    assert leavers[0]["confirm_by"] == "2027-03-31"
    voc = tokens.headers("school", VOCATIONAL)
    assert (
        await svc.client.post(
            f"/v1/vocational-leavers/{leavers[0]['id']}/confirmation", headers=voc, json={"on": "2027-03-10"}
        )
    ).json()["state"] == "confirmed"
    assert (
        await svc.client.post(
            f"/v1/vocational-leavers/{leavers[1]['id']}/loss", headers=voc, json={"on": "2027-04-20"}
        )
    ).json()["state"] == "lost"
    assert (
        await svc.client.post(
            f"/v1/vocational-leavers/{leavers[2]['id']}/loss", headers=h, json={"on": "2027-04-20"}
        )
    ).status_code == 404
    assert (await sweep_once(svc.ctx, dt.date(2027, 4, 1)))["vocational_unconfirmed"] == 1
    assert (await sweep_once(svc.ctx, dt.date(2027, 4, 2)))["vocational_unconfirmed"] == 0
    signals = {s["student_id"]: s["signal"] for s in await outbox_events(svc, "dropout_suspected")}
    assert signals == {s2: "vocational_lost", s3: "vocational_unconfirmed"}


@pytest.fixture
def report_day(monkeypatch: pytest.MonkeyPatch) -> dt.date:
    """The server's day (China's) for absence reports: 9 October 2026."""
    day = dt.date(2026, 10, 9)
    monkeypatch.setattr(absence, "today_in_china", lambda: day)
    return day


async def _stored_lines(svc) -> int:  # type: ignore[no-untyped-def]
    async with svc.ctx.db.transaction() as s:
        return (await s.execute(text("SELECT count(*) FROM absence_report_lines"))).scalar_one()


async def test_an_absence_report_dated_after_today_is_refused_whole(start_service, tokens, report_day):
    """Every line of a report is as of its ``reported_on``: a report dated after today (China's day) is 422
    ``absence_report_in_future``, stores nothing and raises nothing; the same batch id is then accepted
    with a correct date (it was not claimed)."""
    svc = await start(start_service)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    h = tokens.headers("school", SCHOOL_A)
    report = {
        "batch_id": "A-1",
        "school_code": SCHOOL_A,
        "lines": [{"student_id": sid, "unexcused_since": "2026-09-11", "unexcused_days": 20}],
    }
    for day in ("2026-10-10", "2031-01-01"):
        r = await svc.client.post("/v1/absence-reports", headers=h, json={**report, "reported_on": day})
        assert r.status_code == 422 and r.json()["code"] == "absence_report_in_future", r.text
        assert r.json()["errors"][0]["field"] == "reported_on"
    assert await _stored_lines(svc) == 0 and await outbox_events(svc, "dropout_suspected") == []
    today = await svc.client.post(
        "/v1/absence-reports", headers=h, json={**report, "reported_on": "2026-10-09"}
    )
    assert today.status_code == 200 and today.json()["replayed"] is False, today.text
    assert today.json()["signals_raised"] == 1


async def test_absence_lines_are_checked_one_by_one_and_a_signal_needs_twenty_school_days(
    start_service, tokens, report_day
):
    """Four weeks of unexcused absence: a run of at least 28 days up to the report AND at least 20 school
    days missed in it. A line whose run starts after the report, or claims more days than the run has, is
    refused on its own (its index and code in ``refused``) while the batch's other lines are applied."""
    svc = await start(start_service)
    ids = [(await enroll(svc, tokens, make_id())).json()["id"] for _ in range(5)]
    lines = [
        {"student_id": ids[0], "unexcused_since": "2026-09-11", "unexcused_days": 20},  # four weeks: signal
        {"student_id": ids[1], "unexcused_since": "2026-10-12", "unexcused_days": 1},  # after the report
        {"student_id": ids[2], "unexcused_since": "2026-09-20", "unexcused_days": 21},  # 20 days in the run
        {"student_id": ids[3], "unexcused_since": "2026-09-01", "unexcused_days": 3},  # a long run, 3 days
        {"student_id": ids[4], "unexcused_since": "2026-10-09", "unexcused_days": 1},  # from today
    ]
    r = await svc.client.post(
        "/v1/absence-reports",
        headers=tokens.headers("school", SCHOOL_A),
        json={"batch_id": "A-2", "school_code": SCHOOL_A, "reported_on": "2026-10-09", "lines": lines},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["lines"], body["accepted"], body["signals_raised"]) == (5, 3, 1)
    assert [(x["index"], x["student_id"], x["code"]) for x in body["refused"]] == [
        (1, ids[1], "absence_starts_after_report"),
        (2, ids[2], "absence_days_exceed_span"),
    ]
    assert all(x["title"] and x["title_zh"] and x["errors"] for x in body["refused"])
    assert await _stored_lines(svc) == 3
    assert [s["student_id"] for s in await outbox_events(svc, "dropout_suspected")] == [ids[0]]
