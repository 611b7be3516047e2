"""Every casework list walks its pages with the cursors it hands out, and answers 400 invalid_cursor (not
500) to a cursor of another shape: a bare integer, wrong types, another list's cursor."""

from __future__ import annotations

import uuid

from baoxue.pagination import encode_cursor
from tests.casework.helpers import ENTRY_FIELDS, SCHOOL_A, case_in, move, open_case

SEMESTER = "2026-autumn"
CASES_KEY = ["2026-11-20", str(uuid.uuid4())]  # a key of the case lists: (opened_on, id)
OWED_KEY = [SCHOOL_A, "stu-1"]  # a key of the owed list: (school_code, student_id)
NOT_DATED = [encode_cursor(5), encode_cursor(["x", 1]), encode_cursor([1, "a"]), encode_cursor(OWED_KEY)]
NOT_AN_ID = [encode_cursor("abc"), encode_cursor(1.5), encode_cursor(True), encode_cursor(CASES_KEY)]
NOT_CODES = [encode_cursor(5), encode_cursor(["2026-11-20", 7]), encode_cursor([SCHOOL_A])]


async def _walk(svc, path: str, headers: dict[str, str], **params) -> list[str]:
    """The ids of every item of a list, one page at a time (limit 1)."""
    seen, cursor = [], None
    while True:
        query = {**params, "limit": 1, **({"cursor": cursor} if cursor else {})}
        r = await svc.client.get(path, params=query, headers=headers)
        assert r.status_code == 200, (path, r.text)
        seen += [str(i.get("id", i.get("student_id"))) for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return seen


async def test_every_list_pages_with_its_own_cursors_and_refuses_other_shapes(start_service, tokens):
    svc = await start_service("casework", report_due_workdays=1)
    h = tokens.headers("school", SCHOOL_A)
    teacher = tokens.headers("teacher", SCHOOL_A)
    overdue = []
    for _ in range(2):
        case = await open_case(svc, h, detected_on="2026-10-09")
        r = await move(svc, h, case["id"], "confirmed", on="2026-10-12", **ENTRY_FIELDS["confirmed"])
        assert r.status_code == 200, r.text
        overdue.append(case["id"])
    persuading = await case_in(svc, h, "persuading")
    attempt = {"attempted_on": "2026-11-21", "by": "王老师", "form": "phone", "outcome": "considering"}
    for _ in range(2):
        r = await svc.client.post(f"/v1/cases/{persuading['id']}/persuasions", json=attempt, headers=teacher)
        assert r.status_code == 201, r.text
    for day in ("2026-11-18", "2026-11-19"):
        body = {"id": str(uuid.uuid4()), "student_id": "stu-1", "visited_on": day, "form": "phone"}
        r = await svc.client.post("/v1/visits", json=body, headers=teacher)
        assert r.status_code == 201, r.text
    roster = {"students": [{"student_id": "stu-1"}, {"student_id": "stu-2"}, {"student_id": "stu-3"}]}
    r = await svc.client.put(f"/v1/rosters/{SCHOOL_A}/{SEMESTER}", json=roster, headers=h)
    assert r.status_code == 200, r.text
    for student in ("s1", "s2"):
        plan = {"kind": "student", "student_id": student, "measures": ["结对帮扶"], "review_on": "2027-01-10"}
        assert (await svc.client.post("/v1/support-plans", json=plan, headers=h)).status_code == 201

    lists = {
        "/v1/cases": ({}, NOT_DATED, 3),
        "/v1/cases/ledgers/confirmed": ({}, NOT_DATED, 3),
        "/v1/cases/reports/overdue": ({}, NOT_DATED, 2),
        f"/v1/cases/{persuading['id']}/persuasions": ({}, NOT_AN_ID, 2),
        "/v1/visits": ({}, NOT_DATED, 2),
        "/v1/visits/owed": ({"semester": SEMESTER}, NOT_CODES, 2),
        "/v1/support-plans": ({}, NOT_DATED, 2),
    }
    for path, (params, bad, count) in lists.items():
        assert len(await _walk(svc, path, h, **params)) == count, path
        for cursor in bad:
            r = await svc.client.get(path, params={**params, "cursor": cursor}, headers=h)
            assert r.status_code == 400, (path, cursor, r.text)
            assert r.json()["code"] == "invalid_cursor"
    assert set(await _walk(svc, "/v1/cases/reports/overdue", h)) == set(overdue)
