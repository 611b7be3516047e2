"""Shared helpers of the casework tests: organisations, building cases in a given state, outbox reads."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

from sqlalchemy import insert, select

from baoxue.events.envelope import EventData
from casework import semesters
from casework.readmodels.models import ChildRegistryStatus, StudentRecord

BUREAU = "370406D01"
TOWN_A = "370406001"  # 山城街道
TOWN_B = "370406101"  # 店子镇
SCHOOL_A = "37040600101001"
SCHOOL_B = "37040610101001"
_ids = itertools.count(1)


def new_child() -> tuple[str, str]:
    n = next(_ids)
    return f"child-{n:05d}", f"stu-{n:05d}"


async def open_case(svc: Any, headers: dict[str, str], **over: Any) -> dict[str, Any]:
    child_id, student_id = new_child()
    body = {"child_id": child_id, "student_id": student_id, "school_code": SCHOOL_A, "hukou_town": TOWN_A}
    body.update(over)
    r = await svc.client.post("/v1/cases", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def move(svc: Any, headers: dict[str, str], case_id: str, to: str, **fields: Any) -> Any:
    return await svc.client.post(
        f"/v1/cases/{case_id}/transitions", json={"to": to, **fields}, headers=headers
    )


async def enrol(
    svc: Any,
    *,
    student_id: str,
    child_id: str | None,
    status: str = "enrolled",
    school_code: str = SCHOOL_A,
    id_blind_index: str | None = None,
) -> None:
    """Put a student record into the read model as enrollment's events would."""
    async with svc.ctx.db.transaction() as s:
        await s.execute(
            insert(StudentRecord).values(
                student_id=student_id,
                child_id=child_id,
                school_code=school_code,
                status=status,
                sequence=1,
                id_blind_index=id_blind_index,
            )
        )


async def attend(
    svc: Any, headers: dict[str, str], case: dict[str, Any], *, since: str, days: int = 1
) -> None:
    """The school confirms ``days`` days of attendance from ``since`` (the return, or the opening of a
    suspected case to be closed as unfounded), one a calendar day."""
    start = dt.date.fromisoformat(since)
    period = {"from_date": since, "to_date": (start + dt.timedelta(days=days - 1)).isoformat()}
    r = await svc.client.post(
        f"/v1/cases/{case['id']}/attendance", json={**period, "days_attended": days}, headers=headers
    )
    assert r.status_code == 201, r.text


async def exclude(svc: Any, child_id: str, status: str = "deceased") -> None:
    async with svc.ctx.db.transaction() as s:
        await s.execute(
            insert(ChildRegistryStatus).values(
                child_id=child_id, status=status, effective_date=dt.date(2026, 11, 1), sequence=1
            )
        )


async def outbox_events(svc: Any, contract: type[EventData] | None = None) -> list[dict[str, Any]]:
    """The envelopes in the service's outbox, oldest first (only ``contract``'s if given)."""
    table = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        rows = (
            await s.execute(select(table.c.event_type, table.c.envelope).order_by(table.c.created_at))
        ).all()
    out = [{"type": r.event_type, **json.loads(r.envelope)} for r in rows]
    return [e for e in out if contract is None or e["type"] == contract.event_type()]


ENTRY_FIELDS: dict[str, dict[str, Any]] = {
    "confirmed": {"reason": "learning_weariness", "responsible_person": "王老师"},
    "placed": {"placement_mode": "home_delivery"},
    "escalated": {"evidence": [{"kind": "written_refusal", "description": "家长拒绝书面材料"}]},
}
PATHS: dict[str, list[str]] = {
    "suspected": [],
    "confirmed": ["confirmed"],
    "persuading": ["confirmed", "persuading"],
    "returned": ["confirmed", "persuading", "returned"],
    "placed": ["confirmed", "persuading", "placed"],
    "escalated": ["confirmed", "persuading", "escalated"],
}


async def case_in(svc: Any, headers: dict[str, str], state: str, on: str | None = None) -> dict[str, Any]:
    """A fresh case moved along the allowed path to ``state`` (closed: suspected → closed, unfounded);
    with ``on``, opened and moved on that day (moves may be back-dated, not before the move before)."""
    if state == "closed":
        # An unfounded closure needs the configured days of attendance since the opening.
        days = svc.ctx.settings.attendance_days_for_closure
        opened = on or (semesters.today() - dt.timedelta(days=days)).isoformat()
        case = await open_case(svc, headers, detected_on=opened)
        await enrol(svc, student_id=case["student_id"], child_id=case["child_id"])
        await attend(svc, headers, case, since=opened, days=days)
        r = await move(svc, headers, case["id"], "closed", closure_reason="unfounded")
        assert r.status_code == 200, r.text
        return r.json()
    case = await open_case(svc, headers, **({"detected_on": on} if on else {}))
    for step in PATHS[state]:
        r = await move(
            svc, headers, case["id"], step, **ENTRY_FIELDS.get(step, {}), **({"on": on} if on else {})
        )
        assert r.status_code == 200, r.text
        case = r.json()
    assert case["state"] == state
    return case
