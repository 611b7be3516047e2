"""A registration answered 503 saved nothing, and its retry with the same Idempotency-Key succeeds.

The demo saw POST /v1/students answer 503 ("the database is not reachable; nothing was saved") for
records that had in fact been saved, and the retry was refused 409 student_number_taken. Cause, on
SQLite: the record is inserted inside ``session.begin_nested()``; before the request's first write
the driver has no transaction open, so the SAVEPOINT began one and its RELEASE committed the record
at once; a later statement of the request (outbox, audit, idempotency key) that failed with a
database error was rolled back alone. Fixed in ``baoxue.db`` (BEGIN before such a SAVEPOINT).

The failure is a real database error on the request's last statement: a trigger on the idempotency
table that fails like an unavailable database (SQLite: a missing table; PostgreSQL: SQLSTATE 57014,
query_canceled), both mapped to 503 by the problem handlers. Both paths are checked; only the single
POST uses a savepoint (the batch path passed before the fix as well).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text

from baoxue.testing.plugin import RunningService
from enrollment.students.models import StudentRecord
from tests.enrollment.conftest import SCHOOL_A, make_id, outbox_events, start

_SQLITE = [
    "CREATE TRIGGER test_fail_idempotency AFTER INSERT ON idempotency_keys BEGIN "
    "INSERT INTO test_no_such_table VALUES (1); END"
]
_POSTGRES = [
    "CREATE OR REPLACE FUNCTION test_fail_idempotency() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'simulated outage' USING ERRCODE = '57014'; END $$",
    "CREATE TRIGGER test_fail_idempotency AFTER INSERT ON idempotency_keys "
    "FOR EACH ROW EXECUTE FUNCTION test_fail_idempotency()",
]


async def _sql(svc: RunningService, statements: list[str]) -> None:
    async with svc.ctx.db.engine.begin() as conn:
        for statement in statements:
            await conn.exec_driver_sql(statement)


async def _fail_idempotency_inserts(svc: RunningService) -> None:
    await _sql(svc, _POSTGRES if svc.ctx.db.dialect == "postgresql" else _SQLITE)


async def _heal(svc: RunningService) -> None:
    statements = [
        "DROP TRIGGER IF EXISTS test_fail_idempotency"
        + (" ON idempotency_keys" if svc.ctx.db.dialect == "postgresql" else "")
    ]
    if svc.ctx.db.dialect == "postgresql":
        statements.append("DROP FUNCTION IF EXISTS test_fail_idempotency()")
    await _sql(svc, statements)


async def _records(svc: RunningService, id_number: str) -> int:
    async with svc.ctx.db.transaction() as s:
        stmt = select(func.count()).where(
            StudentRecord.id_blind_index == svc.ctx.blind_index.of(id_number)  # type: ignore[arg-type]
        )
        return int((await s.execute(stmt)).scalar_one())


async def _audit_entries(svc: RunningService) -> int:
    async with svc.ctx.db.transaction() as s:
        return int(
            (await s.execute(text("SELECT count(*) FROM audit_log WHERE action = 'create'"))).scalar_one()
        )


@pytest.mark.parametrize("path", ["/v1/students", "/v1/students/batch"])
async def test_a_503_saved_nothing_and_the_retry_is_answered_once(start_service, tokens, path: str) -> None:
    svc = await start(start_service)
    id_number = make_id()
    record: dict[str, Any] = {
        "student_number": "G" + id_number,
        "id_number": id_number,
        "school_code": SCHOOL_A,
        "grade": 3,
        "enrolled_on": "2026-09-01",
    }
    body = record if path == "/v1/students" else {"records": [record]}
    headers = {**tokens.headers("school", SCHOOL_A), "Idempotency-Key": f"retry-{id_number}"}

    await _fail_idempotency_inserts(svc)
    try:
        failed = await svc.client.post(path, headers=headers, json=body)
    finally:
        await _heal(svc)
    assert failed.status_code == 503, failed.text
    assert failed.json()["code"] == "service_unavailable"
    # "nothing was saved": no record, no event, no audit entry
    assert await _records(svc, id_number) == 0
    assert await outbox_events(svc, "student.registered") == []
    assert await _audit_entries(svc) == 0

    retried = await svc.client.post(path, headers=headers, json=body)
    assert retried.status_code in (200, 201), retried.text  # not 409 student_number_taken
    assert "Idempotent-Replayed" not in retried.headers
    if path.endswith("batch"):
        assert retried.json()["created"] == 1, retried.text
    again = await svc.client.post(path, headers=headers, json=body)
    assert (again.status_code, again.json()) == (retried.status_code, retried.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await _records(svc, id_number) == 1
    assert len(await outbox_events(svc, "student.registered")) == 1
