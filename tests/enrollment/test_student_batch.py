"""Batch registration of student records: per-record outcomes, good records stored once, replays."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from enrollment.students.models import StudentRecord
from enrollment.students.schemas import BATCH_LIMIT
from tests.enrollment.conftest import (
    SCHOOL_A,
    SCHOOL_B,
    enroll,
    make_id,
    outbox_events,
    register_child,
    start,
)


def _record(id_number: str, school: str = SCHOOL_A, number: str | None = None) -> dict[str, object]:
    return {
        "student_number": number or "G" + id_number,
        "id_number": id_number,
        "school_code": school,
        "grade": 3,
        "enrolled_on": "2026-09-01",
    }


async def _count(svc, **where: str) -> int:  # type: ignore[no-untyped-def]
    async with svc.ctx.db.transaction() as s:
        stmt = select(func.count()).select_from(StudentRecord)
        for k, v in where.items():
            stmt = stmt.where(getattr(StudentRecord, k) == v)
        return int((await s.execute(stmt)).scalar_one())


async def test_mixed_batch_answers_per_record_and_stores_good_ones_once(
    start_service, event_publisher, tokens
):
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    already = make_id()
    assert (await enroll(svc, tokens, already)).status_code == 201
    good_1, good_2, twice = make_id(), make_id(), make_id()
    records = [
        _record(kid.id_number),  # 0 good, linked to the read-model child
        _record(already, number="L2026000000077"),  # 1 the child already has an active record
        _record(good_1, school=SCHOOL_B),  # 2 another school's student
        _record(good_1, number="X12"),  # 3 invalid student number
        _record(  # 4 invalid ID number (check digit)
            good_1[:-1] + ("0" if good_1[-1] != "0" else "1"), number="L2026000000079"
        ),
        _record(good_2),  # 5 good
        _record(twice),  # 6 good
        _record(twice, number="L2026000000078"),  # 7 the same child again in this batch
        _record(good_1, number="G" + make_id()),  # 8 G number of another person
        _record(good_1, school="37040699999999"),  # 9 not a school
    ]
    h = {**tokens.headers("school", SCHOOL_A), "Idempotency-Key": "roll-2026-a"}
    r = await svc.client.post("/v1/students/batch", headers=h, json={"records": records})
    assert r.status_code == 200, r.text
    body = r.json()
    outcomes = [(o["index"], o["outcome"], o["status"], o["code"]) for o in body["results"]]
    assert outcomes == [
        (0, "created", 201, None),
        (1, "refused", 409, "active_record_exists"),
        (2, "refused", 403, "outside_jurisdiction"),
        (3, "refused", 422, "invalid_student_number"),
        (4, "refused", 422, "invalid_id_number"),
        (5, "created", 201, None),
        (6, "created", 201, None),
        (7, "refused", 409, "duplicate_in_batch"),
        (8, "refused", 422, "student_number_mismatch"),
        (9, "refused", 422, "unknown_school"),
    ]
    assert (body["created"], body["refused"]) == (3, 7)
    assert body["results"][1]["title_zh"] == "该儿童已有在籍学籍（一人一籍）"
    for id_number in (kid.id_number, already, good_1, good_2, twice):
        assert id_number not in r.text  # no identifiers in the answer
    created_ids = [o["id"] for o in body["results"] if o["outcome"] == "created"]
    linked = await svc.client.get(
        f"/v1/students/{created_ids[0]}", headers=tokens.headers("school", SCHOOL_A)
    )
    assert linked.json()["child_id"] == kid.child_id
    assert await _count(svc, school_code=SCHOOL_A) == 4  # the earlier one + three
    events = await outbox_events(svc, "student.registered")
    assert sorted(e["student_id"] for e in events[1:]) == sorted(created_ids)

    replay = await svc.client.post("/v1/students/batch", headers=h, json={"records": records})
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == body
    assert await _count(svc, school_code=SCHOOL_A) == 4  # stored once
    assert len(await outbox_events(svc, "student.registered")) == 4

    reused = await svc.client.post("/v1/students/batch", headers=h, json={"records": records[:2]})
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"

    # without a key, the same batch again: every record is now refused, nothing is stored twice
    again = await svc.client.post(
        "/v1/students/batch",
        headers=tokens.headers("school", SCHOOL_A),
        json={"records": records[:1] + records[5:7]},
    )
    assert [o["code"] for o in again.json()["results"]] == ["student_number_taken"] * 3
    assert await _count(svc, school_code=SCHOOL_A) == 4


async def test_batch_limits_and_permissions(start_service, tokens):
    svc = await start(start_service)
    empty = await svc.client.post(
        "/v1/students/batch", headers=tokens.headers("school", SCHOOL_A), json={"records": []}
    )
    assert empty.status_code == 422
    too_many = [_record(make_id())] * 5001
    big = await svc.client.post(
        "/v1/students/batch", headers=tokens.headers("school", SCHOOL_A), json={"records": too_many}
    )
    assert big.status_code == 422
    none = await svc.client.post(
        "/v1/students/batch",
        headers=tokens.headers("dpf", "370406D04"),
        json={"records": [_record(make_id())]},
    )
    assert none.status_code == 403


async def test_a_batch_of_the_largest_size_is_stored_in_chunks(start_service, tokens):
    """The documented maximum (``BATCH_LIMIT``) is stored whole: its look-ups and inserts are cut in
    chunks under the databases' bound-parameter limits (one INSERT of 5,000 rows × 19 columns exceeds
    PostgreSQL's 65,535)."""
    svc = await start(start_service)
    # Five consecutive sequence numbers per birth date: the ID numbers are valid and all different.
    births = [dt.date(2015, 1, 1) + dt.timedelta(days=i // 5) for i in range(BATCH_LIMIT)]
    records = [_record(make_id(birth)) for birth in births]
    r = await svc.client.post(
        "/v1/students/batch", headers=tokens.headers("school", SCHOOL_A), json={"records": records}
    )
    body = r.json()
    assert r.status_code == 200 and body["created"] == BATCH_LIMIT and body["refused"] == 0, r.text
    assert await _count(svc, school_code=SCHOOL_A) == BATCH_LIMIT
