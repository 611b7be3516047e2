"""If-Match on case transitions: optional, honoured; a stale ETag is a 412 naming what changed."""

from __future__ import annotations

import pytest

from tests.casework.helpers import ENTRY_FIELDS, SCHOOL_A, SCHOOL_B, attend, case_in, enrol, move, open_case

# Every kind of move a school makes, from the state it starts in.
MOVES = [
    ("suspected", "confirmed"),
    ("confirmed", "persuading"),
    ("persuading", "returned"),
    ("persuading", "placed"),
    ("persuading", "escalated"),
    ("returned", "persuading"),
    ("escalated", "persuading"),
    ("suspected", "closed"),
]


def _fields(to: str) -> dict[str, object]:
    return {**ENTRY_FIELDS.get(to, {}), **({"closure_reason": "unfounded"} if to == "closed" else {})}


async def _etag(svc, headers: dict[str, str], case_id: str) -> str:
    r = await svc.client.get(f"/v1/cases/{case_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.headers["ETag"]


@pytest.mark.parametrize(("from_state", "to_state"), MOVES)
async def test_current_etag_moves_the_case_and_answers_the_new_etag(
    start_service, tokens, from_state, to_state
):
    svc = await start_service("casework", attendance_days_for_closure=1)
    h = tokens.headers("school", SCHOOL_A)
    case = await case_in(svc, h, from_state)
    if to_state == "closed":
        await enrol(svc, student_id=case["student_id"], child_id=case["child_id"])
        await attend(svc, h, case, since=case["opened_on"])
    tag = await _etag(svc, h, case["id"])
    assert tag == f'W/"{case["version"]}"'
    r = await move(svc, {**h, "If-Match": tag}, case["id"], to_state, **_fields(to_state))
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["state"] == to_state
    assert r.headers["ETag"] == f'W/"{moved["version"]}"' != tag
    assert await _etag(svc, h, case["id"]) == r.headers["ETag"]


@pytest.mark.parametrize(("from_state", "to_state"), MOVES)
async def test_stale_etag_is_412_naming_the_state_change_and_changes_nothing(
    start_service, tokens, from_state, to_state
):
    svc = await start_service("casework", attendance_days_for_closure=1)
    h = tokens.headers("school", SCHOOL_A)
    case = await open_case(svc, h)
    stale = await _etag(svc, h, case["id"])
    # Someone else moves the case along (suspected → … → from_state) after this client read it.
    moved = await case_in_from(svc, h, case, from_state)
    if to_state == "closed":
        await enrol(svc, student_id=case["student_id"], child_id=case["child_id"])
        await attend(svc, h, case, since=case["opened_on"])
    if from_state == "suspected":
        # Nothing moved yet: change the case by an edit instead, so the ETag is stale.
        r = await svc.client.patch(
            f"/v1/cases/{case['id']}", json={"analysis": "厌学"}, headers={**h, "If-Match": stale}
        )
        assert r.status_code == 200, r.text
        moved = r.json()
    r = await move(svc, {**h, "If-Match": stale}, case["id"], to_state, **_fields(to_state))
    assert r.status_code == 412, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "precondition_failed"
    assert body["current_state"] == from_state
    assert body["current_version"] == moved["version"]
    assert body["current_etag"] == f'W/"{moved["version"]}"'
    expected = {"analysis"} if from_state == "suspected" else {"state"}
    assert expected <= set(body["conflicting_fields"])
    after = (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()
    assert after["state"] == from_state and after["version"] == moved["version"]
    # The answer's current ETag is the one to retry with.
    retry = await move(
        svc, {**h, "If-Match": body["current_etag"]}, case["id"], to_state, **_fields(to_state)
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["state"] == to_state


async def case_in_from(svc, headers: dict[str, str], case: dict, state: str) -> dict:
    """Move an already open (suspected) case along the allowed path to ``state``."""
    path = {
        "suspected": [],
        "confirmed": ["confirmed"],
        "persuading": ["confirmed", "persuading"],
        "returned": ["confirmed", "persuading", "returned"],
        "escalated": ["confirmed", "persuading", "escalated"],
    }[state]
    for step in path:
        r = await move(svc, headers, case["id"], step, **ENTRY_FIELDS.get(step, {}))
        assert r.status_code == 200, r.text
        case = r.json()
    return case


async def test_conflict_names_the_fields_the_moves_set(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    case = await open_case(svc, h)
    stale = await _etag(svc, h, case["id"])
    await move(svc, h, case["id"], "confirmed", **ENTRY_FIELDS["confirmed"])
    r = await move(svc, {**h, "If-Match": stale}, case["id"], "closed", closure_reason="excluded")
    assert r.status_code == 412
    assert r.json()["conflicting_fields"] == sorted(
        ["state", "reason", "responsible_person", "confirmed_on", "report_due"]
    )
    # An edit after a transition names the transition's fields too (the versions are per field).
    r = await svc.client.patch(
        f"/v1/cases/{case['id']}", json={"analysis": "x"}, headers={**h, "If-Match": stale}
    )
    assert r.status_code == 412 and "state" in r.json()["conflicting_fields"]


async def test_if_match_is_optional_star_matches_and_malformed_is_400(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("school", SCHOOL_A)
    case = await open_case(svc, h)
    r = await move(svc, h, case["id"], "confirmed", **ENTRY_FIELDS["confirmed"])
    assert r.status_code == 200 and r.headers["ETag"] == f'W/"{r.json()["version"]}"'
    r = await move(svc, {**h, "If-Match": "*"}, case["id"], "persuading")
    assert r.status_code == 200 and r.json()["state"] == "persuading"
    r = await move(svc, {**h, "If-Match": "not-an-etag"}, case["id"], "returned")
    assert r.status_code == 400 and r.json()["code"] == "bad_if_match"
    assert (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()["state"] == "persuading"


async def test_a_case_out_of_jurisdiction_is_404_not_412(start_service, tokens):
    svc = await start_service("casework")
    case = await open_case(svc, tokens.headers("school", SCHOOL_A))
    other = tokens.headers("school", SCHOOL_B)
    r = await move(
        svc, {**other, "If-Match": 'W/"999"'}, case["id"], "confirmed", **ENTRY_FIELDS["confirmed"]
    )
    assert r.status_code == 404


async def test_openapi_describes_if_match_as_optional_and_the_412(start_service):
    svc = await start_service("casework")
    spec = (await svc.client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/cases/{case_id}/transitions"]["post"]
    [header] = [p for p in operation["parameters"] if p["in"] == "header" and p["name"].lower() == "if-match"]
    assert header["required"] is False
    assert "Optional but honoured" in header["description"]
    assert "412" in operation["responses"]
    assert "ETag" in operation["description"]
