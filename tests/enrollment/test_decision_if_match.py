"""If-Match on transfer approvals and rejections and on deferral decisions: optional, honoured when sent
(412 on a stale ETag, checked after the jurisdiction's 404); every answer carries the new ETag."""

from __future__ import annotations

import datetime as dt

import pytest

from enrollment.signals.sweep import sweep_once
from tests.enrollment.conftest import (
    BUREAU,
    DISTRICT_A,
    SCHOOL_A,
    SCHOOL_B,
    enroll,
    make_id,
    outbox_events,
    register_child,
    start,
)

OTHER_SCHOOL = "37040610201001"  # a school of neither side


async def _transfer(svc, tokens) -> tuple[str, str]:
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    t = await svc.client.post(
        f"/v1/students/{sid}/transfers",
        headers=tokens.headers("school", SCHOOL_A),
        json={"to_school": SCHOOL_B, "requested_on": "2026-09-07"},
    )
    assert t.status_code == 201 and t.headers["ETag"] == 'W/"1"' and t.json()["version"] == 1
    return sid, t.json()["id"]


async def test_transfer_approvals_and_rejection_honour_if_match(start_service, tokens):
    svc = await start(start_service)
    sending, receiving = tokens.headers("school", SCHOOL_A), tokens.headers("school", SCHOOL_B)
    sid, tid = await _transfer(svc, tokens)

    sent = await svc.client.post(
        f"/v1/transfers/{tid}/approvals",
        headers={**sending, "If-Match": 'W/"1"'},
        json={"side": "sending", "on": "2026-09-08"},
    )
    assert sent.status_code == 200 and sent.headers["ETag"] == 'W/"2"' and sent.json()["version"] == 2

    # The receiving school read the transfer before the sending side approved: refused, nothing completed.
    stale = await svc.client.post(
        f"/v1/transfers/{tid}/approvals",
        headers={**receiving, "If-Match": 'W/"1"'},
        json={"side": "receiving", "on": "2026-09-09"},
    )
    assert stale.status_code == 412
    problem = stale.json()
    assert problem["code"] == "precondition_failed" and problem["current_etag"] == 'W/"2"'
    assert "state" in problem["conflicting_fields"]
    student = (await svc.client.get(f"/v1/students/{sid}", headers=sending)).json()
    assert student["school_code"] == SCHOOL_A and student["version"] == 1

    # Outside both schools' jurisdiction: 404 like a missing transfer, whatever the ETag.
    foreign = await svc.client.post(
        f"/v1/transfers/{tid}/approvals",
        headers={**tokens.headers("school", OTHER_SCHOOL), "If-Match": 'W/"9"'},
        json={"side": "receiving", "on": "2026-09-09"},
    )
    assert foreign.status_code == 404

    done = await svc.client.post(
        f"/v1/transfers/{tid}/approvals",
        headers={**receiving, "If-Match": sent.headers["ETag"]},
        json={"side": "receiving", "on": "2026-09-09"},
    )
    assert done.status_code == 200 and done.json()["state"] == "completed" and done.headers["ETag"] == 'W/"3"'
    moved = (await svc.client.get(f"/v1/students/{sid}", headers=receiving)).json()
    assert moved["school_code"] == SCHOOL_B

    # Rejection: stale refused (the transfer stays open), current accepted, none sent still accepted.
    _, tid2 = await _transfer(svc, tokens)
    late = await svc.client.post(
        f"/v1/transfers/{tid2}/rejection", headers={**receiving, "If-Match": 'W/"2"'}
    )
    assert late.status_code == 412 and late.json()["current_etag"] == 'W/"1"'
    malformed = await svc.client.post(
        f"/v1/transfers/{tid2}/rejection", headers={**receiving, "If-Match": "x"}
    )
    assert malformed.status_code == 400 and malformed.json()["code"] == "bad_if_match"
    ok = await svc.client.post(f"/v1/transfers/{tid2}/rejection", headers={**receiving, "If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.json()["state"] == "rejected" and ok.headers["ETag"] == 'W/"2"'

    _, tid3 = await _transfer(svc, tokens)
    plain = await svc.client.post(f"/v1/transfers/{tid3}/rejection", headers=sending)  # a government system
    assert plain.status_code == 200 and plain.headers["ETag"] == 'W/"2"'
    # only the accepted completion moved a record
    assert [c["reason"] for c in await outbox_events(svc, "student.status_changed")] == ["transfer_completed"]


@pytest.mark.usefixtures("in_september")
async def test_deferral_decision_honours_if_match(start_service, event_publisher, tokens):
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    bureau = tokens.headers("bureau", BUREAU)
    filed = await svc.client.post(
        "/v1/deferral-applications",
        headers=tokens.headers("school_district", DISTRICT_A),
        json={
            "child_id": kid.child_id,
            "kind": "deferral",
            "reason": "illness",
            "evidence": ["med/1"],
            "filed_on": "2026-09-04",
        },
    )
    assert filed.status_code == 201 and filed.headers["ETag"] == 'W/"1"' and filed.json()["version"] == 1
    path = f"/v1/deferral-applications/{filed.json()['id']}/decision"
    approve = {"approve": True, "on": "2026-09-10", "valid_from": "2026-09-01", "valid_until": "2027-06-30"}

    ahead = await svc.client.post(path, headers={**bureau, "If-Match": 'W/"2"'}, json=approve)
    assert ahead.status_code == 412 and ahead.json()["current_etag"] == 'W/"1"'
    assert "state" in ahead.json()["conflicting_fields"]
    ok = await svc.client.post(path, headers={**bureau, "If-Match": filed.headers["ETag"]}, json=approve)
    assert ok.status_code == 200 and ok.json()["state"] == "approved" and ok.headers["ETag"] == 'W/"2"'

    # A second officer decided on the version they read: refused as stale, the approval stands.
    reject = {"approve": False, "on": "2026-09-11"}
    second = await svc.client.post(path, headers={**bureau, "If-Match": 'W/"1"'}, json=reject)
    assert second.status_code == 412
    without = await svc.client.post(path, headers=bureau, json=reject)
    assert without.status_code == 409 and without.json()["code"] == "application_decided"
    listed = await svc.client.get("/v1/deferral-applications", headers=bureau)
    [app] = listed.json()["items"]
    assert app["state"] == "approved" and app["version"] == 2

    # The expiry is a new version too (and DeferralExpired carries it as its sequence).
    assert (await sweep_once(svc.ctx, dt.date(2027, 7, 1)))["deferrals_expired"] == 1
    [app] = (await svc.client.get("/v1/deferral-applications", headers=bureau)).json()["items"]
    assert app["version"] == 3 and app["expired_on"] == "2027-07-01"
