"""A student record is linked to its child whatever the order of registration and child snapshot.

The registration (single POST or batch) looks the child up in the read model, then inserts the
record; the consumer applies a child snapshot, then links the records of that ID blind index. Each
test interleaves the two with real transactions on the test database: one side is held open, the
other runs until it is done or waits for it, then the first commits.

- consumer first: the snapshot is applied and not committed; the registration looks the child up,
  finds nothing and inserts; then the snapshot commits. Before the fix the record stayed with no
  child on both databases (the consumer's link ran before the record existed).
- registration first: the registration has inserted and not committed; the snapshot is applied, its
  link finds no record; then the registration commits. Before the fix the record stayed with no child
  on PostgreSQL (READ COMMITTED: neither saw the other's uncommitted row). SQLite serialises writers:
  the snapshot's write waits for the registration there, so this order checks the same promise.

On PostgreSQL "waits" is observed (an advisory lock not granted in this database); on SQLite the
waiting side blocks on the database's write lock, which cannot be observed, so the test gives it a
moment (SETTLE) to reach that point before the other side commits.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.contracts.registry import ChildRegistered
from baoxue.events.consumer import ReceivedEvent
from baoxue.events.envelope import Envelope
from baoxue.testing.plugin import RunningService
from enrollment.children.handlers import make_batch_handlers, make_handlers
from enrollment.students import batch, service
from enrollment.students.models import StudentRecord
from enrollment.students.schemas import StudentCreate
from tests.enrollment.conftest import DISTRICT_B, SCHOOL_A, TOWN_B, make_id, outbox_events, start

SETTLE = 1.5  # seconds a side blocked on SQLite's write lock is given to get there


def _record(id_number: str) -> dict[str, Any]:
    return {
        "student_number": "G" + id_number,
        "id_number": id_number,
        "school_code": SCHOOL_A,
        "grade": 3,
        "enrolled_on": "2026-09-01",
    }


async def _apply_snapshot(
    svc: RunningService, session: AsyncSession, child_id: str, id_number: str, handler: str = "per_event"
) -> None:
    """The consumer's handler of ChildRegistered, in the caller's transaction (as the runner calls it):
    the per-event one, or the set-based one with a run of this and another child's snapshot."""
    data = ChildRegistered(
        child_id=child_id,
        id_blind_index=svc.ctx.blind_index.of(id_number),
        hukou_town=TOWN_B,
        hukou_school_district=DISTRICT_B,
    )
    envelope = Envelope.wrap(data, subject=child_id, sequence=1, trace_id=None)
    event = ReceivedEvent(envelope=envelope, data=data)
    if handler == "per_event":
        await make_handlers(svc.ctx)["snapshot"](session, event)
        return
    other = data.model_copy(update={"child_id": str(uuid.uuid4()), "id_blind_index": "blind-elsewhere"})
    envelope = Envelope.wrap(other, subject=other.child_id, sequence=1, trace_id=None)
    await make_batch_handlers(svc.ctx)["snapshot"](
        session, [ReceivedEvent(envelope=envelope, data=other), event]
    )


async def _until_done_or_waiting(svc: RunningService, task: asyncio.Task[Any]) -> None:
    """Return when ``task`` finished, or is waiting for the other side's transaction."""
    if svc.ctx.db.dialect != "postgresql":
        await asyncio.wait({task}, timeout=SETTLE)
        return
    await svc.until_done_or_waiting(task)


async def _linked(svc: RunningService, id_number: str) -> tuple[str | None, str | None]:
    async with svc.ctx.db.transaction() as s:
        row = (
            await s.execute(
                select(StudentRecord.child_id, StudentRecord.hukou_school_district).where(
                    StudentRecord.id_blind_index == svc.ctx.blind_index.of(id_number)  # type: ignore[arg-type]
                )
            )
        ).one()
    return row[0], row[1]


@pytest.mark.parametrize("handler", ["per_event", "set_based"])
@pytest.mark.parametrize("path", ["single", "batch"])
async def test_snapshot_applied_while_registration_looks_the_child_up(
    start_service, tokens, path: str, handler: str
) -> None:
    svc = await start(start_service)
    id_number, child_id = make_id(), str(uuid.uuid4())
    headers = tokens.headers("school", SCHOOL_A)

    async def register() -> Any:
        if path == "single":
            return await svc.client.post("/v1/students", headers=headers, json=_record(id_number))
        return await svc.client.post(
            "/v1/students/batch", headers=headers, json={"records": [_record(id_number)]}
        )

    async with svc.ctx.db.sessionmaker() as consumer, consumer.begin():
        await _apply_snapshot(svc, consumer, child_id, id_number, handler)
        registration = asyncio.create_task(register())
        await _until_done_or_waiting(svc, registration)
    response = await registration
    assert response.status_code in (200, 201), response.text
    if path == "batch":
        assert response.json()["created"] == 1, response.text

    assert await _linked(svc, id_number) == (child_id, DISTRICT_B)
    registered = await outbox_events(svc, "student.registered")
    assert [e["child_id"] for e in registered] == [child_id]  # the event names the child too


Register = Callable[[AsyncSession, RunningService, Principal, StudentCreate], Awaitable[Any]]


async def _single(session: AsyncSession, svc: RunningService, p: Principal, data: StudentCreate) -> Any:
    return await service.register_student(session=session, ctx=svc.ctx, principal=p, data=data)


async def _batch(session: AsyncSession, svc: RunningService, p: Principal, data: StudentCreate) -> Any:
    outcomes = await batch.register_batch(session=session, ctx=svc.ctx, principal=p, records=[data])
    assert [o.outcome for o in outcomes] == ["created"]


@pytest.mark.parametrize("handler", ["per_event", "set_based"])
@pytest.mark.parametrize("register", [_single, _batch], ids=["single", "batch"])
async def test_registration_inserted_while_snapshot_links(
    start_service, register: Register, handler: str
) -> None:
    svc = await start(start_service)
    id_number, child_id = make_id(), str(uuid.uuid4())
    school = svc.principal("school", SCHOOL_A)

    async def consume() -> None:
        async with svc.ctx.db.transaction() as session:
            await _apply_snapshot(svc, session, child_id, id_number, handler)

    async with svc.ctx.db.sessionmaker() as registration, registration.begin():
        await register(registration, svc, school, StudentCreate.model_validate(_record(id_number)))
        snapshot = asyncio.create_task(consume())
        await _until_done_or_waiting(svc, snapshot)
    await snapshot

    assert await _linked(svc, id_number) == (child_id, DISTRICT_B)
