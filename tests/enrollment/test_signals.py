"""Dropout signals from schools: absence reports and junior-3 leavers to vocational school."""

from __future__ import annotations

import datetime as dt

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
    later = {**report, "batch_id": "A-2026-W42", "reported_on": "2026-10-16"}
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
