"""A verification task carries its version; a resolution or confirmation sent with a stale If-Match is a
412 naming the resolution's fields and changes nothing (two officers working the same task offline)."""

from __future__ import annotations

from tests.enrollment.conftest import DISTRICT_A, SCHOOL_A, SCHOOL_B, start
from tests.enrollment.test_verification import one_unaccounted_task


async def test_a_stale_if_match_on_a_task_is_a_412_naming_the_fields(start_service, event_publisher, tokens):
    svc = await start(start_service)
    district = tokens.headers("school_district", DISTRICT_A)
    task = await one_unaccounted_task(svc, tokens, event_publisher)
    read = f'W/"{task["version"]}"'
    url = f"/v1/verification-tasks/{task['id']}"
    elsewhere = {
        "outcome": "enrolled_elsewhere",
        "evidence": "家长电话",
        "enrolling_org": SCHOOL_B,
        "on": "2026-10-10",
    }

    first = await svc.client.post(f"{url}/resolution", headers=district | {"If-Match": read}, json=elsewhere)
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] == f'W/"{first.json()["version"]}"' != read

    stale = await svc.client.post(
        f"{url}/resolution",
        headers=district | {"If-Match": read},
        json={"outcome": "not_in_school", "evidence": "入户核实", "on": "2026-10-11"},
    )
    assert stale.status_code == 412, stale.text
    problem = stale.json()
    assert problem["code"] == "precondition_failed" and "outcome" in problem["conflicting_fields"]
    assert problem["current_etag"] == first.headers["ETag"]

    stale_confirm = await svc.client.post(
        f"{url}/confirmation",
        headers=tokens.headers("school", SCHOOL_B) | {"If-Match": read},
        json={"source": "enrolling_org", "on": "2026-10-12"},
    )
    assert stale_confirm.status_code == 412
    # A school that may not see the task learns neither its version nor its state: 404, not 412.
    outsider = await svc.client.post(
        f"{url}/confirmation",
        headers=tokens.headers("school", SCHOOL_A) | {"If-Match": read},
        json={"source": "enrolling_org", "on": "2026-10-12"},
    )
    assert outsider.status_code == 404, outsider.text
    ok = await svc.client.post(
        f"{url}/confirmation",
        headers=tokens.headers("school", SCHOOL_B) | {"If-Match": first.headers["ETag"]},
        json={"source": "enrolling_org", "on": "2026-10-12"},
    )
    assert (
        ok.status_code == 200
        and ok.json()["state"] == "resolved"
        and ok.json()["outcome"] == "enrolled_elsewhere"
    )
