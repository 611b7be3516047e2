"""The bureaus that only receive referrals (HRSS, market regulation, culture) see and act on their own
referrals and inbox, and nothing else."""

from __future__ import annotations

import datetime as dt
import uuid

from baoxue.contracts.casework import CaseConfirmed
from baoxue.testing.plugin import eventually
from tests.notify.conftest import BUREAU, SCHOOL_B, TOWN_B, start_notify

HRSS, MARKET, CULTURE = "370406D08", "370406D09", "370406D10"


async def _items(svc, path, headers, **params):
    response = await svc.client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_hrss_handles_a_child_labour_referral_and_sees_no_other_departments(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    case_id = str(uuid.uuid4())
    await event_publisher.publish(
        CaseConfirmed(
            case_id=case_id,
            school_code=SCHOOL_B,
            hukou_town=TOWN_B,
            state="confirmed",
            reason="working",
            report_due=dt.date(2026, 12, 10),
        ),
        subject=case_id,
    )
    hrss = tokens.headers("hrss", HRSS)

    async def referred() -> bool:
        return len(await _items(svc, "/v1/referrals", hrss)) == 1

    await eventually(referred)
    venue = await svc.client.post(
        "/v1/referrals",
        json={"kind": "venue", "case_id": case_id, "details": "工作日在网吧上网"},
        headers=tokens.headers("school", SCHOOL_B),
    )
    assert venue.status_code == 201
    venue_ids = {r["to_org"]: r["id"] for r in venue.json()}

    # HRSS: its child-labour referral only (a district-wide jurisdiction does not widen the list).
    [own] = await _items(svc, "/v1/referrals", hrss)
    assert (own["kind"], own["to_org"], own["status"]) == ("child_labour", HRSS, "sent")
    [message] = await _items(svc, "/v1/inbox", hrss)
    assert message["kind"] == "referral" and message["ref_id"] == own["id"] and message["action_required"]
    read = await svc.client.post(f"/v1/inbox/{message['id']}/acknowledgement", headers=hrss)
    assert read.status_code == 200 and read.json()["acknowledged_at"] is not None
    receipt = await svc.client.post(f"/v1/referrals/{own['id']}/receipt", headers=hrss)
    assert receipt.status_code == 200 and receipt.json()["status"] == "received"
    outcome = await svc.client.post(
        f"/v1/referrals/{own['id']}/outcome",
        json={"outcome": "action_taken", "note": "已对用人单位立案查处"},
        headers=hrss,
    )
    assert outcome.status_code == 200, outcome.text
    assert outcome.json()["status"] == "closed" and outcome.json()["outcome"] == "action_taken"
    # The receipt deadline was met.
    bureau = tokens.headers("bureau", BUREAU)
    receipts = await _items(svc, "/v1/deadlines", bureau, kind="referral_receipt", org=HRSS)
    assert [d["status"] for d in receipts] == ["met"]

    # Another department's referral: invisible and not actionable (404, not 403).
    for path in ("receipt", "outcome"):
        foreign = await svc.client.post(
            f"/v1/referrals/{venue_ids[MARKET]}/{path}", json={"outcome": "action_taken"}, headers=hrss
        )
        assert foreign.status_code == 404
    # Nothing else of notify: deadlines, documents, escalations, scorecards, the calendar, hand-made referrals.
    for path in ("/v1/deadlines", "/v1/documents", "/v1/escalations", "/v1/bulletins", "/v1/providers"):
        assert (await svc.client.get(path, headers=hrss)).status_code == 403, path
    assert (await svc.client.get("/v1/scorecards", params={"year": 2026}, headers=hrss)).status_code == 403
    made = await svc.client.post("/v1/referrals", json={"kind": "venue", "case_id": case_id}, headers=hrss)
    assert made.status_code == 403

    # Market regulation and culture each see their own venue referral and can close it.
    for role, org in (("market", MARKET), ("culture", CULTURE)):
        headers = tokens.headers(role, org)
        [row] = await _items(svc, "/v1/referrals", headers)
        assert row["id"] == venue_ids[org] and row["kind"] == "venue"
        closed = await svc.client.post(
            f"/v1/referrals/{row['id']}/outcome", json={"outcome": "no_violation_found"}, headers=headers
        )
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
    # A teacher no longer lists referrals; a school still sees the ones it sent.
    teacher = await svc.client.get("/v1/referrals", headers=tokens.headers("teacher", SCHOOL_B))
    assert teacher.status_code == 403
    sent = await _items(svc, "/v1/referrals", tokens.headers("school", SCHOOL_B))
    assert {r["to_org"] for r in sent} == {HRSS, MARKET, CULTURE}
