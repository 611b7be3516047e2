"""A sweep for a future date: refused unless the service runs in simulation (the demo plays a year on); a
sweep for a past date opens no statutory deadlines outside simulation."""

from __future__ import annotations

import datetime as dt
import uuid

from baoxue.workdays import today_in_china
from notify.deadlines.service import open_deadline
from tests.notify.conftest import BUREAU, SCHOOL_A, start_notify


async def _open_case_report(svc, due: dt.date) -> None:
    async with svc.ctx.db.transaction() as s:
        case_id = str(uuid.uuid4())
        await open_deadline(
            session=s, kind="case_report", org=SCHOOL_A, subject_id=case_id, due=due, case_id=case_id
        )


async def test_a_future_sweep_is_refused_outside_simulation(start_service, tokens):
    svc = await start_notify(start_service)
    today = today_in_china()
    await _open_case_report(svc, today + dt.timedelta(days=10))
    future = today + dt.timedelta(days=40)
    bureau = tokens.headers("bureau", BUREAU)
    refused = await svc.client.post("/v1/deadlines/sweep", json={"today": future.isoformat()}, headers=bureau)
    assert refused.status_code == 422 and refused.json()["code"] == "sweep_date_in_future"
    assert "NOTIFY_SIMULATION" in refused.json()["detail"] and future.isoformat() in refused.json()["detail"]
    ok = await svc.client.post("/v1/deadlines/sweep", json={"today": today.isoformat()}, headers=bureau)
    assert ok.status_code == 200 and ok.json()["lapsed"] == 0
    lapsed = await svc.client.get("/v1/deadlines", params={"status": "lapsed"}, headers=bureau)
    assert lapsed.json()["items"] == []


async def test_in_simulation_a_future_sweep_lapses_what_would_have_lapsed(start_service, tokens):
    svc = await start_notify(start_service, simulation=True)
    today = today_in_china()
    await _open_case_report(svc, today + dt.timedelta(days=10))
    future = today + dt.timedelta(days=40)
    bureau = tokens.headers("bureau", BUREAU)
    swept = await svc.client.post("/v1/deadlines/sweep", json={"today": future.isoformat()}, headers=bureau)
    assert swept.status_code == 200, swept.text
    assert swept.json()["today"] == future.isoformat() and swept.json()["lapsed"] == 1
    [row] = (await svc.client.get("/v1/deadlines", params={"status": "lapsed"}, headers=bureau)).json()[
        "items"
    ]
    assert row["kind"] == "case_report" and row["org"] == SCHOOL_A and row["closed_on"] == future.isoformat()
    # The sweep still needs the bureau's permission.
    school = await svc.client.post(
        "/v1/deadlines/sweep", json={"today": future.isoformat()}, headers=tokens.headers("school", SCHOOL_A)
    )
    assert school.status_code == 403


async def test_a_past_sweep_opens_no_statutory_deadlines_outside_simulation(start_service, tokens):
    """A sweep for a past date catches up on what is open; it does not open (and so lapse) that year's
    statutory deadlines: no 2020 feeds, censuses or visit quotas, no 2020 criticism list."""
    svc = await start_notify(start_service)
    bureau = tokens.headers("bureau", BUREAU)
    for day in ("2020-01-02", "2020-12-31"):
        swept = await svc.client.post("/v1/deadlines/sweep", json={"today": day}, headers=bureau)
        assert swept.status_code == 200, swept.text
        assert (swept.json()["opened"], swept.json()["lapsed"]) == (0, 0)
    listed = await svc.client.get("/v1/deadlines", params={"limit": 500}, headers=bureau)
    assert listed.json()["items"] == []
    for level in ("school", "town"):
        criticism = await svc.client.get(
            "/v1/scorecards/criticism", params={"year": 2020, "level": level}, headers=bureau
        )
        assert criticism.status_code == 200 and criticism.json() == []
    # Today's sweep still opens the year's remaining statutory deadlines.
    now = await svc.client.post("/v1/deadlines/sweep", json={}, headers=bureau)
    assert now.status_code == 200 and now.json()["opened"] > 0
