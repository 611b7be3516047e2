"""Upserts of the read models, dropping stale events by their publisher's sequence."""

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.db import conflict_insert
from casework.readmodels.models import ChildRegistryStatus, StudentRecord


def _upsert(session: AsyncSession, model: type, key: str, values: Mapping[str, object]) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE … WHERE stored.sequence < new.sequence (both dialects)."""
    stmt = conflict_insert(session, model).values(**values)
    table = model.__table__  # type: ignore[attr-defined]
    return stmt.on_conflict_do_update(
        index_elements=[key],
        set_={k: stmt.excluded[k] for k in values if k != key},
        where=table.c.sequence < stmt.excluded.sequence,
    )


async def upsert_student(
    session: AsyncSession,
    *,
    student_id: str,
    child_id: str | None,
    id_blind_index: str | None,
    school_code: str,
    status: str,
    sequence: int,
) -> None:
    values = {
        "student_id": student_id,
        "child_id": child_id,
        "id_blind_index": id_blind_index,
        "school_code": school_code,
        "status": status,
        "sequence": sequence,
    }
    await session.execute(_upsert(session, StudentRecord, "student_id", values))


async def upsert_students(session: AsyncSession, rows: Sequence[Mapping[str, object]]) -> None:
    """:func:`upsert_student` of many records in one statement (each record at most once per call:
    one ``INSERT … ON CONFLICT`` cannot touch a row twice). Executed with the list of rows, so
    SQLAlchemy sends multi-row VALUES pages from one cached compilation."""
    if not rows:
        return
    table = StudentRecord.__table__  # type: ignore[attr-defined]
    stmt = conflict_insert(session, table)
    upsert = stmt.on_conflict_do_update(
        index_elements=["student_id"],
        set_={k: stmt.excluded[k] for k in rows[0] if k != "student_id"},
        where=table.c.sequence < stmt.excluded.sequence,
    )
    await session.execute(upsert, [dict(r) for r in rows])


async def link_student(
    session: AsyncSession, *, student_id: str, child_id: str, school_code: str, status: str, sequence: int
) -> None:
    """A record enrollment linked to its child: fill ``child_id`` (kept if a newer event set it already).

    The ID blind index is left as stored: if the link arrives before the registration, the row is
    created without it and the registration (an older sequence) no longer applies.
    """
    values = {
        "student_id": student_id,
        "child_id": child_id,
        "school_code": school_code,
        "status": status,
        "sequence": sequence,
    }
    await session.execute(_upsert(session, StudentRecord, "student_id", values))


async def upsert_registry_status(
    session: AsyncSession, *, child_id: str, status: str, effective_date: dt.date, sequence: int
) -> bool:
    """Store the child's registry status; False when the event is older than what is stored."""
    values = {"child_id": child_id, "status": status, "effective_date": effective_date, "sequence": sequence}
    stmt = _upsert(session, ChildRegistryStatus, "child_id", values).returning(
        col(ChildRegistryStatus.child_id)
    )
    return (await session.execute(stmt)).first() is not None
