"""Handlers of enrollment's student-record events: the local read model closure checks use.

A registration batch of a school becomes one StudentRegistered per record, so a run of them (or of
StudentStatusChanged) has a set-based handler too: the k-th event of every record in the k-th
multi-row upsert, so each statement touches a record once and the stored sequence decides, as one
by one, whether an event is applied or stale. The per-event handler stays the fallback.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.enrollment import StudentRecordEvent
from baoxue.events.consumer import ReceivedEvent
from casework.readmodels.repository import upsert_student, upsert_students


def _row(event: ReceivedEvent[StudentRecordEvent]) -> dict[str, Any]:
    d = event.data
    return {
        "student_id": d.student_id,
        "child_id": d.child_id,
        "id_blind_index": d.id_blind_index,
        "school_code": d.school_code,
        "status": d.status,
        "sequence": event.envelope.sequence,
    }


def make_handlers() -> dict[str, Any]:
    async def on_student_record(session: AsyncSession, event: ReceivedEvent[StudentRecordEvent]) -> None:
        await upsert_student(session, **_row(event))

    return {"student_record": on_student_record}


def make_batch_handlers() -> dict[str, Any]:
    """The set-based counterparts of :func:`make_handlers` (same keys, same effect)."""

    async def on_student_records(
        session: AsyncSession, events: list[ReceivedEvent[StudentRecordEvent]]
    ) -> None:
        rounds: list[list[dict[str, Any]]] = []
        seen: dict[str, int] = {}
        for event in events:
            k = seen.get(event.data.student_id, 0)
            seen[event.data.student_id] = k + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(_row(event))
        for rows in rounds:  # in record order, so concurrent consumers lock the rows in one order
            await upsert_students(session, sorted(rows, key=lambda row: str(row["student_id"])))

    return {"student_record": on_student_records}
