"""Handlers of enrollment's student-record events: the local read model closure checks use."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.enrollment import StudentRecordEvent
from baoxue.events.consumer import ReceivedEvent
from casework.readmodels.repository import upsert_student


def make_handlers() -> dict[str, Any]:
    async def on_student_record(session: AsyncSession, event: ReceivedEvent[StudentRecordEvent]) -> None:
        d = event.data
        await upsert_student(
            session,
            student_id=d.student_id,
            child_id=d.child_id,
            id_blind_index=d.id_blind_index,
            school_code=d.school_code,
            status=d.status,
            sequence=event.envelope.sequence,
        )

    return {"student_record": on_student_record}
