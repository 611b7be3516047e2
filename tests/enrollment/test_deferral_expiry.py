"""DeferralExpired: the sweep publishes it once per decided deferral or exemption whose period ended."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from enrollment.signals.sweep import sweep_once
from tests.enrollment.conftest import BUREAU, DISTRICT_A, outbox_events, register_child, start


async def _application(svc, tokens, child_id: str, kind: str, decision: dict | None) -> str:
    district = tokens.headers("school_district", DISTRICT_A)
    body = {
        "child_id": child_id,
        "kind": kind,
        "reason": "illness",
        "evidence": ["med/1"],
        "filed_on": "2026-09-04",
    }
    r = await svc.client.post("/v1/deferral-applications", headers=district, json=body)
    assert r.status_code == 201, r.text
    app_id = r.json()["id"]
    if decision is not None:
        d = await svc.client.post(
            f"/v1/deferral-applications/{app_id}/decision",
            headers=tokens.headers("bureau", BUREAU),
            json=decision,
        )
        assert d.status_code == 200, d.text
    return app_id


@pytest.mark.usefixtures("in_september")
async def test_an_ended_deferral_or_exemption_is_published_once(start_service, event_publisher, tokens):
    svc = await start(start_service)
    kids = [await register_child(svc, event_publisher) for _ in range(4)]
    approve = {"approve": True, "on": "2026-09-10", "valid_from": "2026-09-01"}
    deferral = await _application(
        svc, tokens, kids[0].child_id, "deferral", {**approve, "valid_until": "2027-06-30"}
    )
    exemption = await _application(
        svc, tokens, kids[1].child_id, "exemption", {**approve, "valid_until": "2027-08-31"}
    )
    await _application(svc, tokens, kids[2].child_id, "deferral", {"approve": False, "on": "2026-09-10"})
    await _application(svc, tokens, kids[3].child_id, "deferral", None)  # never decided

    assert (await sweep_once(svc.ctx, dt.date(2027, 6, 30)))["deferrals_expired"] == 0  # its last day
    # Two sweeps at once (two replicas): the deferral is published by one of them only.
    both = await asyncio.gather(
        sweep_once(svc.ctx, dt.date(2027, 7, 1)), sweep_once(svc.ctx, dt.date(2027, 7, 1))
    )
    assert sorted(c["deferrals_expired"] for c in both) == [0, 1]
    assert (await sweep_once(svc.ctx, dt.date(2027, 7, 2)))["deferrals_expired"] == 0
    assert (await sweep_once(svc.ctx, dt.date(2027, 9, 1)))["deferrals_expired"] == 1
    assert (await sweep_once(svc.ctx, dt.date(2028, 1, 1)))["deferrals_expired"] == 0

    events = await outbox_events(svc, "deferral.expired")
    assert events == [
        {
            "deferral_id": deferral,
            "kind": "deferral",
            "child_id": kids[0].child_id,
            "hukou_school_district": DISTRICT_A,
            "ended_on": "2027-06-30",
        },
        {
            "deferral_id": exemption,
            "kind": "exemption",
            "child_id": kids[1].child_id,
            "hukou_school_district": DISTRICT_A,
            "ended_on": "2027-08-31",
        },
    ]  # surrogate ids and codes only: no reason, no evidence
    await svc.drain_outbox()  # and they reach NATS

    listed = await svc.client.get(
        "/v1/deferral-applications?on=2027-09-02", headers=tokens.headers("school_district", DISTRICT_A)
    )
    expired = {a["id"]: a["expired_on"] for a in listed.json()["items"]}
    assert expired[deferral] == "2027-07-01" and expired[exemption] == "2027-09-01"
    assert sum(v is not None for v in expired.values()) == 2
