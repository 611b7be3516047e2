"""Working-day deadlines on the official calendar, years without data, loading a year's arrangement."""

from __future__ import annotations

from tests.notify.conftest import BUREAU, SCHOOL_A, start_notify


async def test_deadline_across_national_day_counts_the_make_up_saturday(start_service, tokens):
    svc = await start_notify(start_service)
    headers = tokens.headers("school", SCHOOL_A)
    # 2026: 1–7 October off; Saturday 10 October is a make-up working day (调休).
    quotes = {}
    for n in (1, 2, 3, 4):
        r = await svc.client.get(
            "/v1/calendar/deadline", params={"start": "2026-09-30", "workdays": n}, headers=headers
        )
        assert r.status_code == 200, r.text
        assert r.json()["exact"] is True and r.json()["warnings"] == []
        quotes[n] = r.json()["due"]
    assert quotes == {1: "2026-10-08", 2: "2026-10-09", 3: "2026-10-10", 4: "2026-10-12"}


async def test_a_year_without_data_warns_until_its_arrangement_is_loaded(start_service, tokens):
    svc = await start_notify(start_service)
    bureau = tokens.headers("bureau", BUREAU)
    # 2099 is a made-up year for the test: no calendar knows it.
    r = await svc.client.get(
        "/v1/calendar/deadline", params={"start": "2099-01-30", "workdays": 2}, headers=bureau
    )
    body = r.json()
    assert body["exact"] is False and body["warnings"] == ["calendar_year_missing:2099"]
    assert body["due"] == "2099-02-03"  # Monday–Friday guess, flagged as such
    statutory = await svc.client.get("/v1/calendar/statutory", params={"year": 2099}, headers=bureau)
    assert statutory.json()["warnings"] == ["calendar_year_missing:2099"]
    assert all(item["is_workday"] is None for item in statutory.json()["items"])

    arrangement = {
        "year": 2099,
        "holidays": ["2099-02-02"],
        "workdays": ["2099-01-31"],
        "source": "test data",
    }
    school = await svc.client.post(
        "/v1/calendar/arrangements", json=arrangement, headers=tokens.headers("school", SCHOOL_A)
    )
    assert school.status_code == 403
    bad = await svc.client.post(
        "/v1/calendar/arrangements", json=arrangement | {"workdays": ["2099-02-04"]}, headers=bureau
    )
    assert bad.status_code == 422 and bad.json()["code"] == "arrangement_invalid"
    loaded = await svc.client.post("/v1/calendar/arrangements", json=arrangement, headers=bureau)
    assert loaded.status_code == 201, loaded.text
    again = await svc.client.post("/v1/calendar/arrangements", json=arrangement, headers=bureau)
    assert again.status_code == 201
    different = await svc.client.post(
        "/v1/calendar/arrangements", json=arrangement | {"holidays": []}, headers=bureau
    )
    assert different.status_code == 409 and different.json()["code"] == "arrangement_conflict"

    r = await svc.client.get(
        "/v1/calendar/deadline", params={"start": "2099-01-30", "workdays": 2}, headers=bureau
    )
    # Sat 31 Jan is a make-up day (1), Mon 2 Feb is off, Tue 3 Feb (2).
    assert r.json() == {
        "start": "2099-01-30",
        "workdays": 2,
        "due": "2099-02-03",
        "exact": True,
        "warnings": [],
    }
    r = await svc.client.get(
        "/v1/calendar/deadline", params={"start": "2099-01-30", "workdays": 1}, headers=bureau
    )
    assert r.json()["due"] == "2099-01-31"
    years = (await svc.client.get("/v1/calendar/years", headers=bureau)).json()
    assert 2099 in years["years"] and years["loaded"][0]["source"] == "test data"
