"""Home visits: offline retries stored once, batch sync, If-Match conflicts, coverage and evidence checks."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid

from sqlalchemy import func, select, text

from baoxue import workdays
from baoxue.contracts.casework import RosterSet, VisitRecorded
from casework.codes import CHILD_CATEGORIES
from casework.visits.models import RosterEntry, Visit
from tests.casework.helpers import SCHOOL_A, SCHOOL_B, outbox_events

SEMESTER = "2026-autumn"
PHOTO = "ab" * 32


def visit(student_id: str = "stu-1", **over) -> dict:
    body = {
        "id": str(uuid.uuid4()),
        "student_id": student_id,
        "visited_on": "2026-11-20",
        "form": "home_visit",
        "participants": ["班主任", "母亲"],
        "notes": "在家表现良好",
        "semester": SEMESTER,
    }
    body.update(over)
    return body


async def _count(svc) -> int:
    async with svc.ctx.db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(Visit))).scalar_one())


async def test_same_visit_posted_three_times_is_stored_once(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("teacher", SCHOOL_A)
    body = visit()
    key = {"Idempotency-Key": f"visit-{body['id']}"}
    answers = [await svc.client.post("/v1/visits", json=body, headers={**h, **key}) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert [a.headers.get("Idempotent-Replayed") for a in answers] == [None, "true", "true"]
    assert answers[0].json() == answers[2].json()
    # A retry that lost its key is still recognised by the client-generated id.
    again = await svc.client.post("/v1/visits", json=body, headers=h)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert await _count(svc) == 1
    assert len(await outbox_events(svc, VisitRecorded)) == 1
    other = await svc.client.post("/v1/visits", json={**body, "notes": "另一次"}, headers=h)
    assert other.status_code == 409 and other.json()["code"] == "visit_id_conflict"
    reused = await svc.client.post("/v1/visits", json={**body, "notes": "另一次"}, headers={**h, **key})
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"


async def test_batch_sync_keeps_good_items_and_reports_bad_ones(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("teacher", SCHOOL_A)
    earlier = visit("stu-0")
    assert (await svc.client.post("/v1/visits", json=earlier, headers=h)).status_code == 201
    items = [
        visit("stu-1"),
        visit("stu-2", form="carrier_pigeon"),
        earlier,
        visit("stu-3", school_code=SCHOOL_B),
        visit("stu-4", visited_on="2026-08-10", semester=None),
        visit("stu-5"),
    ]
    r = await svc.client.post("/v1/visits/batch", json={"visits": items}, headers=h)
    assert r.status_code == 200, r.text
    result = r.json()
    assert [i["status"] for i in result["items"]] == [
        "created",
        "rejected",
        "duplicate",
        "rejected",
        "rejected",
        "created",
    ]
    codes = [i["code"] for i in result["items"]]
    assert codes[1] == "validation_failed" and result["items"][1]["errors"][0]["field"] == "form"
    assert codes[3] == "outside_jurisdiction" and codes[4] == "bad_semester"
    assert (result["created"], result["duplicates"], result["rejected"]) == (2, 1, 3)
    assert await _count(svc) == 3
    replay = await svc.client.post("/v1/visits/batch", json={"visits": items}, headers=h)
    assert [i["status"] for i in replay.json()["items"]].count("duplicate") == 3
    assert await _count(svc) == 3


async def test_stale_visit_update_gets_412_naming_fields(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("teacher", SCHOOL_A)
    body = visit()
    created = await svc.client.post("/v1/visits", json=body, headers=h)
    tag = created.headers["ETag"]
    first = await svc.client.patch(
        f"/v1/visits/{body['id']}",
        json={"notes": "补充", "participants": ["父亲"]},
        headers={**h, "If-Match": tag},
    )
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = await svc.client.patch(
        f"/v1/visits/{body['id']}", json={"form": "phone"}, headers={**h, "If-Match": tag}
    )
    assert stale.status_code == 412
    assert stale.json()["conflicting_fields"] == ["notes", "participants"]
    assert stale.json()["current_etag"] == first.headers["ETag"]
    fresh = await svc.client.patch(
        f"/v1/visits/{body['id']}", json={"form": "phone"}, headers={**h, "If-Match": first.headers["ETag"]}
    )
    assert fresh.status_code == 200 and fresh.json()["form"] == "phone"
    foreign = await svc.client.get(f"/v1/visits/{body['id']}", headers=tokens.headers("teacher", SCHOOL_B))
    assert foreign.status_code == 404


async def test_evidence_checks_flag_dates_and_reused_photos(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("teacher", SCHOOL_A)
    outside = await svc.client.post("/v1/visits", json=visit("stu-1", visited_on="2026-08-20"), headers=h)
    assert outside.status_code == 201 and outside.json()["flags"] == ["date_outside_semester"]
    own = visit("stu-2", photo_hashes=[PHOTO])
    assert (await svc.client.post("/v1/visits", json=own, headers=h)).json()["flags"] == []
    same_student = await svc.client.post("/v1/visits", json=visit("stu-2", photo_hashes=[PHOTO]), headers=h)
    assert same_student.json()["flags"] == []
    reused = await svc.client.post("/v1/visits", json=visit("stu-3", photo_hashes=[PHOTO]), headers=h)
    assert reused.json()["flags"] == ["photo_reused"]
    flagged = (await svc.client.get("/v1/visits", params={"flagged": True}, headers=h)).json()["items"]
    assert sorted(v["student_id"] for v in flagged) == ["stu-1", "stu-3"]


async def test_coverage_counts_special_groups_against_their_quota(start_service, tokens):
    svc = await start_service("casework", visit_quotas={"left_behind": 2, "disabled": 3})
    school = tokens.headers("school", SCHOOL_A)
    roster = {
        "students": [
            {"student_id": "s1", "class_code": "7-1", "teacher": "t1"},
            {"student_id": "s2", "class_code": "7-1", "teacher": "t1", "categories": ["left_behind"]},
            {
                "student_id": "s3",
                "class_code": "7-2",
                "teacher": "t2",
                "categories": ["left_behind", "disabled"],
            },
            {"student_id": "s4", "class_code": "7-2", "teacher": "t2", "categories": ["migrant"]},
        ]
    }
    r = await svc.client.put(f"/v1/rosters/{SCHOOL_A}/{SEMESTER}", json=roster, headers=school)
    assert r.status_code == 200 and (r.json()["students"], r.json()["special_group"]) == (4, 2)
    h = tokens.headers("teacher", SCHOOL_A)
    for student, times in (("s1", 1), ("s2", 2), ("s3", 2)):
        for _ in range(times):
            assert (await svc.client.post("/v1/visits", json=visit(student), headers=h)).status_code == 201
    # A flagged visit does not count toward coverage.
    await svc.client.post("/v1/visits", json=visit("s3", visited_on="2026-08-01"), headers=h)
    [row] = (
        await svc.client.get("/v1/visits/coverage", params={"semester": SEMESTER}, headers=school)
    ).json()
    assert row == {
        "key": SCHOOL_A,
        "school_code": SCHOOL_A,
        "students": 4,
        "visited_at_least_once": 3,
        "special_students": 2,
        "special_quota_met": 1,
        "owed": 2,
        "flagged_visits": 1,
    }
    by_class = (
        await svc.client.get(
            "/v1/visits/coverage", params={"semester": SEMESTER, "by": "class"}, headers=school
        )
    ).json()
    assert [(c["key"], c["visited_at_least_once"], c["special_quota_met"], c["owed"]) for c in by_class] == [
        ("7-1", 2, 1, 0),
        ("7-2", 1, 0, 2),
    ]
    by_teacher = (
        await svc.client.get(
            "/v1/visits/coverage", params={"semester": SEMESTER, "by": "teacher"}, headers=school
        )
    ).json()
    assert [c["key"] for c in by_teacher] == ["t1", "t2"]
    owed = (await svc.client.get("/v1/visits/owed", params={"semester": SEMESTER}, headers=school)).json()[
        "items"
    ]
    assert [(o["student_id"], o["required_visits"], o["visits_done"]) for o in owed] == [
        ("s3", 3, 2),
        ("s4", 1, 0),
    ]
    other = tokens.headers("school", SCHOOL_B)
    assert (
        await svc.client.get("/v1/visits/coverage", params={"semester": SEMESTER}, headers=other)
    ).json() == []
    forbidden = await svc.client.put(f"/v1/rosters/{SCHOOL_A}/{SEMESTER}", json=roster, headers=other)
    assert forbidden.status_code == 404


async def test_same_visit_arriving_at_once_is_stored_once_and_the_roster_fills_it_in(start_service, tokens):
    svc = await start_service("casework")
    h = tokens.headers("teacher", SCHOOL_A)
    roster = {
        "students": [
            {
                "student_id": "stu-r1",
                "child_id": "child-r1",
                "class_code": "7-2",
                "categories": ["left_behind"],
            }
        ]
    }
    r = await svc.client.put(
        f"/v1/rosters/{SCHOOL_A}/{SEMESTER}", json=roster, headers=tokens.headers("school", SCHOOL_A)
    )
    assert r.status_code == 200, r.text
    body = visit("stu-r1", photo_hashes=[PHOTO])
    answers = await asyncio.gather(*(svc.client.post("/v1/visits", json=body, headers=h) for _ in range(4)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 200, 200, 201], [a.text for a in answers]
    stored = [a.json() for a in answers]
    assert all(s == stored[0] for s in stored)
    assert (stored[0]["class_code"], stored[0]["special_group"], stored[0]["flags"]) == ("7-2", True, [])
    assert await _count(svc) == 1
    assert len(await outbox_events(svc, VisitRecorded)) == 1
    [event] = await outbox_events(svc, VisitRecorded)
    assert event["data"]["child_id"] == "child-r1"
    # The same photo for another student is flagged; for the same student's next visit it is not.
    again = await svc.client.post("/v1/visits", json=visit("stu-r1", photo_hashes=[PHOTO]), headers=h)
    other = await svc.client.post("/v1/visits", json=visit("stu-r2", photo_hashes=[PHOTO]), headers=h)
    assert again.json()["flags"] == [] and other.json()["flags"] == ["photo_reused"]


async def test_putting_a_roster_publishes_its_counts_and_nothing_personal(start_service, tokens):
    svc = await start_service("casework", visit_quotas={"left_behind": 2, "disabled": 3})
    school = tokens.headers("school", SCHOOL_A)
    roster = {
        "students": [
            {"student_id": "stu-p1", "child_id": "child-p1", "class_code": "初一7班", "teacher": "t-li-01"},
            {"student_id": "stu-p2", "child_id": "child-p2", "categories": ["left_behind", "disabled"]},
            {"student_id": "stu-p3", "child_id": "child-p3", "categories": ["migrant"]},
        ]
    }
    url = f"/v1/rosters/{SCHOOL_A}/{SEMESTER}"
    r = await svc.client.put(url, json=roster, headers=school)
    assert r.status_code == 200 and (r.json()["students"], r.json()["special_group"]) == (3, 1)
    [event] = await outbox_events(svc, RosterSet)
    assert event["data"] == {
        "school_code": SCHOOL_A,
        "semester": SEMESTER,
        "students": 3,
        "special_group_students": 1,
    }
    assert (event["subject"], event["sequence"]) == (f"{SCHOOL_A}:{SEMESTER}", 1)
    envelope = json.dumps(event, ensure_ascii=False)
    # (A class code like "7-1" would also match ids by chance: a UUID has "…7-1…" in about 1.5 % of them.)
    for personal in ("stu-p", "child-p", "初一7班", "t-li-01", "left_behind", "migrant"):
        assert personal not in envelope

    # A refused roster changes nothing and publishes nothing; a replacement raises the sequence.
    twice = {"students": [roster["students"][0], roster["students"][0]]}
    assert (await svc.client.put(url, json=twice, headers=school)).json()["code"] == "roster_duplicate"
    assert len(await outbox_events(svc, RosterSet)) == 1
    smaller = {"students": roster["students"][:2]}
    assert (await svc.client.put(url, json=smaller, headers=school)).json()["students"] == 2
    other = await svc.client.put(f"/v1/rosters/{SCHOOL_A}/2027-spring", json=smaller, headers=school)
    assert other.status_code == 200
    events = sorted(await outbox_events(svc, RosterSet), key=lambda e: (e["data"]["semester"], e["sequence"]))
    assert [(e["data"]["semester"], e["sequence"], e["data"]["students"]) for e in events] == [
        (SEMESTER, 1, 3),
        (SEMESTER, 2, 2),
        ("2027-spring", 1, 2),
    ]


async def test_rosters_replaced_at_once_get_one_sequence_each_and_the_last_one_stands(start_service, tokens):
    svc = await start_service("casework", visit_quotas={"left_behind": 2})
    school = tokens.headers("school", SCHOOL_A)
    url = f"/v1/rosters/{SCHOOL_A}/{SEMESTER}"
    rosters = [
        {
            "students": [
                {"student_id": f"stu-c{n}-{i}", "categories": ["left_behind"] * (i < n)} for i in range(n + 1)
            ]
        }
        for n in range(1, 5)
    ]
    answers = await asyncio.gather(*(svc.client.put(url, json=body, headers=school) for body in rosters))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    events = sorted(await outbox_events(svc, RosterSet), key=lambda e: e["sequence"])
    assert [e["sequence"] for e in events] == [1, 2, 3, 4]
    # The roster stored is the one whose event carries the highest sequence.
    last = events[-1]["data"]
    async with svc.ctx.db.transaction() as s:
        entries = (
            (await s.execute(select(RosterEntry).where(RosterEntry.school_code == SCHOOL_A))).scalars().all()
        )
    assert (len(entries), sum(e.special_group for e in entries)) == (
        last["students"],
        last["special_group_students"],
    )


async def test_an_explicit_null_for_a_field_that_cannot_be_empty_is_422_naming_it(start_service, tokens):
    """PATCH may clear notes or the location (null), but not the date, the form, the participants or the
    photo hashes: the columns hold no NULL, so an explicit null is refused before the database (it was a
    500), and the visit is unchanged."""
    svc = await start_service("casework")
    h = tokens.headers("teacher", SCHOOL_A)
    created = await svc.client.post("/v1/visits", json=visit(latitude=34.9, longitude=117.4), headers=h)
    url, tag = f"/v1/visits/{created.json()['id']}", created.headers["ETag"]
    for field in ("visited_on", "form", "participants", "photo_hashes"):
        r = await svc.client.patch(url, json={field: None}, headers={**h, "If-Match": tag})
        assert r.status_code == 422, (field, r.text)
        assert r.json()["code"] == "validation_failed"
        assert [(e["field"], e["code"]) for e in r.json()["errors"]] == [(field, "null_not_allowed")]
    cleared = await svc.client.patch(
        url, json={"notes": None, "latitude": None, "longitude": None}, headers={**h, "If-Match": tag}
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["notes"], cleared.json()["latitude"], cleared.json()["version"]) == (None, None, 2)


async def test_the_list_of_students_owed_a_visit_is_audited(start_service, tokens):
    """The owed list names students and their special-group categories (left-behind, disabled…): its
    read leaves an audit entry naming them and the caller's purpose, as the other lists do; an empty
    page leaves none."""
    svc = await start_service("casework")
    school = tokens.headers("school", SCHOOL_A)
    roster = {
        "students": [
            {"student_id": "s1", "categories": ["disabled"]},
            {"student_id": "s2", "categories": ["left_behind"]},
            {"student_id": "s3"},
        ]
    }
    assert (
        await svc.client.put(f"/v1/rosters/{SCHOOL_A}/{SEMESTER}", json=roster, headers=school)
    ).status_code == 200
    table = svc.ctx.audit.table

    async def entries() -> list[dict]:
        async with svc.ctx.db.transaction() as s:
            rows = await s.execute(select(table).where(table.c.action == "read").order_by(table.c.position))
        return [dict(r) for r in rows.mappings()]

    teacher = tokens.headers("teacher", SCHOOL_A, sub="t-a-1", purpose="visit-planning")
    page = await svc.client.get("/v1/visits/owed", params={"semester": SEMESTER, "limit": 2}, headers=teacher)
    assert [o["student_id"] for o in page.json()["items"]] == ["s1", "s2"]
    [entry] = await entries()
    assert (entry["actor"], entry["resource_type"], entry["resource_ids"]) == (
        "t-a-1",
        "roster_student",
        "s1,s2",
    )
    assert (entry["purpose"], entry["detail"]) == ("visit-planning", f"semester={SEMESTER}")
    rest = await svc.client.get(
        "/v1/visits/owed",
        params={"semester": SEMESTER, "cursor": page.json()["next_cursor"]},
        headers=teacher,
    )
    assert [o["student_id"] for o in rest.json()["items"]] == ["s3"]
    assert [e["resource_ids"] for e in await entries()] == ["s1,s2", "s3"]
    other = tokens.headers("teacher", SCHOOL_B)
    assert (await svc.client.get("/v1/visits/owed", params={"semester": SEMESTER}, headers=other)).json()[
        "items"
    ] == []
    assert len(await entries()) == 2


async def test_photo_hashes_are_sha256_hex_and_upper_case_is_the_same_photo(start_service, tokens):
    """A photo hash is a SHA-256 in hex: anything else is a 422 naming the hash (in a batch, that item
    alone). Upper case is the same photo: it is stored in lower case, so the reuse check still finds it
    for another student and a corrected visit cannot dodge it either."""
    svc = await start_service("casework")
    h = tokens.headers("teacher", SCHOOL_A)
    first = await svc.client.post("/v1/visits", json=visit("stu-1", photo_hashes=[PHOTO]), headers=h)
    assert first.status_code == 201 and first.json()["flags"] == []
    shouted = await svc.client.post(
        "/v1/visits", json=visit("stu-2", photo_hashes=[PHOTO.upper()]), headers=h
    )
    assert shouted.status_code == 201, shouted.text
    assert shouted.json()["photo_hashes"] == [PHOTO] and shouted.json()["flags"] == ["photo_reused"]
    for bad in ("not-a-hash", "a" * 65, "a" * 63, "g" * 64, PHOTO[:-1] + " "):
        r = await svc.client.post("/v1/visits", json=visit("stu-3", photo_hashes=[PHOTO, bad]), headers=h)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["code"] == "validation_failed"
        assert [e["field"] for e in r.json()["errors"]] == ["photo_hashes.1"]
    assert await _count(svc) == 2

    # A correction: the same rules, and the reuse check runs on the normalised hash.
    created = await svc.client.post("/v1/visits", json=visit("stu-3"), headers=h)
    url, tag = f"/v1/visits/{created.json()['id']}", created.headers["ETag"]
    bad = await svc.client.patch(url, json={"photo_hashes": ["XYZ"]}, headers={**h, "If-Match": tag})
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["photo_hashes.0"]
    fixed = await svc.client.patch(
        url, json={"photo_hashes": [PHOTO.upper()]}, headers={**h, "If-Match": tag}
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["photo_hashes"] == [PHOTO] and fixed.json()["flags"] == ["photo_reused"]

    # In a batch the bad hash rejects its own item, naming it; the others are stored.
    items = [
        visit("stu-4"),
        visit("stu-5", photo_hashes=["a" * 65]),
        visit("stu-6", photo_hashes=[PHOTO.upper()]),
    ]
    result = (await svc.client.post("/v1/visits/batch", json={"visits": items}, headers=h)).json()
    assert [i["status"] for i in result["items"]] == ["created", "rejected", "created"]
    assert result["items"][1]["code"] == "validation_failed"
    assert [e["field"] for e in result["items"][1]["errors"]] == ["photo_hashes.0"]
    assert result["items"][2]["flags"] == ["photo_reused"]


async def test_a_batch_item_with_text_no_database_stores_or_that_is_no_object_is_rejected_alone(
    start_service, tokens
):
    """A NUL (or another control character, or half a surrogate pair) in a visit's text is refused at the
    schema, naming the field: on PostgreSQL it used to reach the database and refuse the whole day's batch
    (422 value_not_storable, nothing stored). An item that is not an object (null) is rejected alone too."""
    svc = await start_service("casework")
    h = tokens.headers("teacher", SCHOOL_A)
    items = [
        visit("stu-1"),
        visit("stu-2", notes="bad\x00nul"),
        visit("stu-3", participants=["班主任", "母\x07亲"]),
        None,
        visit("stu-4", notes="第一行\n第二行\t(tab)"),
        visit("stu-5\x00"),
        7,
        visit("stu-6", notes="\ud800"),
    ]
    # (json.dumps escapes the lone surrogate as "\\ud800", as a client's JSON encoder may.)
    body = json.dumps({"visits": items})
    r = await svc.client.post(
        "/v1/visits/batch", content=body, headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    result = r.json()
    assert [i["status"] for i in result["items"]] == [
        "created",
        "rejected",
        "rejected",
        "rejected",
        "created",
        "rejected",
        "rejected",
        "rejected",
    ]
    rejected = {i["index"]: i for i in result["items"] if i["status"] == "rejected"}
    assert {i["code"] for i in rejected.values()} == {"validation_failed"}
    assert [(e["field"], e["code"]) for e in rejected[1]["errors"]] == [("notes", "control_character")]
    assert [(e["field"], e["code"]) for e in rejected[2]["errors"]] == [
        ("participants.1", "control_character")
    ]
    assert [(e["field"], e["code"]) for e in rejected[5]["errors"]] == [("student_id", "control_character")]
    assert [(e["field"], e["code"]) for e in rejected[7]["errors"]] == [("notes", "invalid_text")]
    assert (rejected[3]["id"], rejected[6]["id"]) == (None, None)
    assert [e["code"] for e in rejected[3]["errors"]] == ["model_type"]
    assert (result["created"], result["rejected"]) == (2, 6)
    assert await _count(svc) == 2
    # One visit alone, and a correction: the same 422 naming the field, nothing stored.
    single = await svc.client.post("/v1/visits", json=visit("stu-7", notes="bad\x00nul"), headers=h)
    assert single.status_code == 422 and single.json()["code"] == "validation_failed"
    assert [e["field"] for e in single.json()["errors"]] == ["notes"]
    stored = result["items"][0]["id"]
    patch = await svc.client.patch(
        f"/v1/visits/{stored}", json={"notes": "x\x00"}, headers={**h, "If-Match": 'W/"1"'}
    )
    assert patch.status_code == 422 and [e["field"] for e in patch.json()["errors"]] == ["notes"]


async def test_a_database_refusal_of_one_batch_item_loses_only_that_item(start_service, tokens):
    """Whatever the schema lets through and the database still refuses (here a trigger refusing one
    student's visits) rejects that item alone (its savepoint rolls back): the others are stored."""
    svc = await start_service("casework")
    h = tokens.headers("teacher", SCHOOL_A)
    postgres = svc.ctx.db.dialect == "postgresql"
    create = (
        [
            "CREATE FUNCTION refuse_visit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'refused' USING ERRCODE = 'data_exception'; END $$",
            "CREATE TRIGGER refuse_visit BEFORE INSERT ON visits FOR EACH ROW "
            "WHEN (NEW.student_id = 'stu-refused') EXECUTE FUNCTION refuse_visit()",
        ]
        if postgres
        else [
            "CREATE TRIGGER refuse_visit BEFORE INSERT ON visits WHEN NEW.student_id = 'stu-refused' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
    )
    drop = (
        ["DROP TRIGGER refuse_visit ON visits", "DROP FUNCTION refuse_visit()"]
        if postgres
        else ["DROP TRIGGER refuse_visit"]
    )
    async with svc.ctx.db.transaction() as s:
        for statement in create:
            await s.execute(text(statement))
    try:
        items = [
            visit("stu-1", photo_hashes=[PHOTO]),
            visit("stu-refused", photo_hashes=[PHOTO]),
            visit("stu-2"),
        ]
        r = await svc.client.post("/v1/visits/batch", json={"visits": items}, headers=h)
    finally:
        async with svc.ctx.db.transaction() as s:
            for statement in drop:
                await s.execute(text(statement))
    assert r.status_code == 200, r.text
    result = r.json()
    assert [(i["status"], i["code"]) for i in result["items"]] == [
        ("created", None),
        ("rejected", "value_not_storable"),
        ("created", None),
    ]
    assert result["items"][1]["id"] == items[1]["id"]
    assert await _count(svc) == 2
    assert sorted(e["data"]["student_id"] for e in await outbox_events(svc, VisitRecorded)) == [
        "stu-1",
        "stu-2",
    ]


async def test_a_roster_with_an_unknown_category_is_refused_naming_it(start_service, tokens):
    """Roster categories are codes of the child-category code list (the census's, the one the visit quotas
    are configured by): a typo or a Chinese label used to be stored and ignored, so a left-behind student
    owed 1 visit instead of 2. Now it is a 422 naming the student's item and the category's position, with
    the allowed codes, and nothing of the roster is stored."""
    svc = await start_service("casework", visit_quotas={"left_behind": 2})
    school = tokens.headers("school", SCHOOL_A)
    url = f"/v1/rosters/{SCHOOL_A}/{SEMESTER}"
    roster = {
        "students": [
            {"student_id": "q1", "categories": ["left_behind"]},
            {"student_id": "q2", "categories": ["migrant", "leftbehind"]},
            {"student_id": "q3", "categories": ["留守"]},
        ]
    }
    r = await svc.client.put(url, json=roster, headers=school)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"
    errors = r.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [
        ("students.1.categories.1", "literal_error"),
        ("students.2.categories.0", "literal_error"),
    ]
    assert set(errors[0]["allowed"]) == set(CHILD_CATEGORIES)
    assert await outbox_events(svc, RosterSet) == []
    owed = await svc.client.get("/v1/visits/owed", params={"semester": SEMESTER}, headers=school)
    assert owed.json()["items"] == []
    roster["students"][1]["categories"] = ["migrant", "left_behind"]
    roster["students"][2]["categories"] = ["left_behind"]
    r = await svc.client.put(url, json=roster, headers=school)
    assert r.status_code == 200 and r.json()["special_group"] == 3, r.text


async def test_a_visit_dated_after_the_districts_today_is_refused(start_service, tokens, monkeypatch):
    """A visit is recorded after it happened: one dated after today (China's calendar day, whatever the
    server's time zone) is a 422 visit_in_future, for a single visit, a batch item alone and a correction;
    it used to be stored unflagged and count toward coverage. The server's clock here is 20:00 UTC on
    30 November: in Shanting it is already 1 December."""

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.UTC).astimezone(tz)

    monkeypatch.setattr(workdays, "datetime", Clock)
    svc = await start_service("casework")
    school, h = tokens.headers("school", SCHOOL_A), tokens.headers("teacher", SCHOOL_A)
    roster = {"students": [{"student_id": "f1"}, {"student_id": "f2"}]}
    assert (
        await svc.client.put(f"/v1/rosters/{SCHOOL_A}/{SEMESTER}", json=roster, headers=school)
    ).status_code == 200
    today = await svc.client.post("/v1/visits", json=visit("f1", visited_on="2026-12-01"), headers=h)
    assert today.status_code == 201 and today.json()["flags"] == [], today.text
    future = await svc.client.post("/v1/visits", json=visit("f2", visited_on="2026-12-02"), headers=h)
    assert future.status_code == 422 and future.json()["code"] == "visit_in_future", future.text
    assert [(e["field"], e["code"]) for e in future.json()["errors"]] == [("visited_on", "in_future")]
    items = [visit("f2", visited_on="2026-11-30"), visit("f2", visited_on="2027-01-15"), visit("f2")]
    result = (await svc.client.post("/v1/visits/batch", json={"visits": items}, headers=h)).json()
    assert [(i["status"], i["code"]) for i in result["items"]] == [
        ("created", None),
        ("rejected", "visit_in_future"),
        ("created", None),
    ]
    url, tag = f"/v1/visits/{today.json()['id']}", today.headers["ETag"]
    moved = await svc.client.patch(url, json={"visited_on": "2026-12-24"}, headers={**h, "If-Match": tag})
    assert moved.status_code == 422 and moved.json()["code"] == "visit_in_future"
    assert (await svc.client.get(url, headers=h)).json()["visited_on"] == "2026-12-01"
    [row] = (
        await svc.client.get("/v1/visits/coverage", params={"semester": SEMESTER}, headers=school)
    ).json()
    assert (row["visited_at_least_once"], row["flagged_visits"]) == (2, 0)
    assert await _count(svc) == 3
