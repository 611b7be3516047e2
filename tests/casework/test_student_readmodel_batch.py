"""Casework's student read model: the set-based handler has exactly the effect of the per-event one.

Generated streams of StudentRegistered / StudentStatusChanged (several events of one record in a run,
repeats, stale and out-of-order sequences, rows already stored) are applied both ways on the same rows,
each in a transaction that is rolled back; the read model must end the same. The stream is cut into
fetch batches at random and each batch into runs of one event type, as the consumer runner does.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.enrollment import StudentRegistered, StudentStatusChanged
from baoxue.events.consumer import ReceivedEvent
from baoxue.events.envelope import Envelope
from casework.consumers import subscriptions
from casework.readmodels.handlers import make_batch_handlers, make_handlers
from casework.readmodels.models import StudentRecord

EXAMPLES = 150
STATUSES = ("enrolled", "suspended", "transferred_out", "dropped_out", "graduated", "deceased")


def generate(rng: random.Random) -> tuple[list[dict[str, Any]], list[ReceivedEvent[Any]], list[int]]:
    students = [str(uuid.uuid4()) for _ in range(rng.randint(1, 4))]
    stored = [
        {
            "student_id": s,
            "child_id": None,
            "id_blind_index": f"b-{s}",
            "school_code": "37040600101001",
            "status": "enrolled",
            "sequence": rng.randint(0, 3),
        }
        for s in students
        if rng.random() < 0.3
    ]
    events: list[ReceivedEvent[Any]] = []
    for _ in range(rng.randint(1, 14)):
        student = rng.choice(students)
        kind = rng.choice((StudentRegistered, StudentStatusChanged))
        fields: dict[str, Any] = {
            "student_id": student,
            "child_id": rng.choice((None, f"child-{student}")),
            "id_blind_index": f"b-{student}",
            "school_code": rng.choice(("37040600101001", "37040610101001")),
            "grade": 3,
            "status": rng.choice(STATUSES),
        }
        if kind is StudentStatusChanged:
            fields["previous_status"] = "enrolled"
        data = kind(**fields)
        env = Envelope.wrap(data, subject=student, sequence=rng.randint(1, 6), trace_id=None)
        events.append(ReceivedEvent(envelope=env, data=data))
    fetches: list[int] = []
    left = len(events)
    while left:
        fetches.append(min(left, rng.randint(1, 8)))
        left -= fetches[-1]
    return stored, events, fetches


async def _state(session: AsyncSession, events: list[ReceivedEvent[Any]]) -> list[dict[str, Any]]:
    ids = {e.data.student_id for e in events}
    t = StudentRecord.__table__  # type: ignore[attr-defined]
    rows = await session.execute(select(t).where(t.c.student_id.in_(ids)).order_by(t.c.student_id))
    return [dict(r) for r in rows.mappings()]


async def _apply(svc: Any, stored: list[dict[str, Any]], events: list[Any], fetches: list[int] | None) -> Any:
    one = make_handlers()["student_record"]
    many = make_batch_handlers()["student_record"]
    async with svc.ctx.db.sessionmaker() as session, session.begin():
        if stored:
            await session.execute(insert(StudentRecord.__table__), stored)  # type: ignore[attr-defined]
        if fetches is None:
            for event in events:
                await one(session, event)
        else:
            start = 0
            for size in fetches:
                fetched, start = events[start : start + size], start + size
                i = 0
                while i < len(fetched):
                    j = i + 1
                    while j < len(fetched) and type(fetched[j].data) is type(fetched[i].data):
                        j += 1
                    await many(session, fetched[i:j])
                    i = j
        state = await _state(session, events)
        await session.rollback()
    return state


async def test_set_based_student_handler_matches_the_per_event_one(start_service) -> None:
    svc = await start_service("casework")
    [from_enrollment, *_] = subscriptions(svc.ctx)
    assert set(from_enrollment.batch_handlers) == {StudentRegistered, StudentStatusChanged}
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    several = 0
    for example in range(EXAMPLES):
        stored, events, fetches = generate(rng)
        expected = await _apply(svc, stored, events, None)
        got = await _apply(svc, stored, events, fetches)
        assert got == expected, f"seed {seed}, example {example}"
        several += len(events) - len({e.data.student_id for e in events})
    assert several > 0
