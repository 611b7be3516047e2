"""Enrollment's verification tasks and notify's deadlines for them, through both services (in process,
real NATS, the run's database): notify's deadline follows each task a run supersedes, reopens or moves, and
a resolution is judged on the server's day, not on the day the client states."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from baoxue.testing.plugin import eventually
from baoxue.workdays import today_in_china
from enrollment.verification import tasks as verification_tasks
from notify.deadlines.models import Deadline
from tests.enrollment.conftest import (
    BUREAU,
    DISTRICT_A,
    DISTRICT_B,
    SCHOOL_A,
    TOWN_B,
    enroll,
    register_child,
)
from tests.enrollment.test_verification import move_hukou, run_and_wait


async def _task_deadlines(notify, task_id: str) -> dict[str, tuple]:
    """{district: (status, due, on time)} of the task's deadlines in notify."""
    async with notify.ctx.db.transaction() as s:
        rows = (
            await s.execute(
                select(Deadline).where(Deadline.kind == "verification_task", Deadline.subject_id == task_id)
            )
        ).scalars()
        return {d.org: (d.status, d.due_date, d.on_time) for d in rows}


async def test_notify_deadlines_follow_enrollment_tasks_through_runs_and_resolution(
    start_service, event_publisher, tokens, monkeypatch
):
    notify = await start_service("notify", sweep_enabled=False, delivery_enabled=False)
    enrollment = await start_service("enrollment", sweep_enabled=False)
    await notify.wait_events_ready()
    await enrollment.wait_events_ready()
    bureau = tokens.headers("bureau", BUREAU)
    found = await register_child(enrollment, event_publisher)
    lost = await register_child(enrollment, event_publisher)
    due = today_in_china() + dt.timedelta(days=20)
    body = {
        "kind": "september_verification",
        "year": 2026,
        "as_of": "2026-09-30",
        "deadline": due.isoformat(),
    }
    campaign = (await enrollment.client.post("/v1/campaigns", headers=bureau, json=body)).json()["id"]

    async def deadlines_become(task_id: str, expected: dict[str, tuple]) -> None:
        await enrollment.drain_outbox()

        async def check() -> bool:
            return await _task_deadlines(notify, task_id) == expected

        await eventually(check, timeout=20)

    await run_and_wait(enrollment, tokens, campaign)
    tasks = {
        t["child_id"]: t["id"]
        for t in (await enrollment.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    }
    for kid in (found, lost):
        await deadlines_become(tasks[kid.child_id], {DISTRICT_A: ("open", due, None)})

    # 1. explained (enrolled): the task is superseded, its deadline cancelled
    student = (await enroll(enrollment, tokens, found)).json()["id"]
    assert (await run_and_wait(enrollment, tokens, campaign))["counts"]["tasks_superseded"] == 1
    await deadlines_become(tasks[found.child_id], {DISTRICT_A: ("cancelled", due, None)})

    # 2. unaccounted again (dropped out): the task reopens, and so does its deadline
    dropout = await enrollment.client.post(
        f"/v1/students/{student}/dropout",
        headers=tokens.headers("school", SCHOOL_A),
        json={"on": "2026-09-20"},
    )
    assert dropout.status_code == 200, dropout.text
    assert (await run_and_wait(enrollment, tokens, campaign))["counts"]["tasks_reopened"] == 1
    await deadlines_become(tasks[found.child_id], {DISTRICT_A: ("open", due, None)})

    # 3. the hukou moved: the task moves to the new district, the old district's deadline is cancelled
    await move_hukou(enrollment, event_publisher, lost, district=DISTRICT_B, town=TOWN_B)
    assert (await run_and_wait(enrollment, tokens, campaign))["counts"]["tasks_moved"] == 1
    await deadlines_become(
        tasks[lost.child_id], {DISTRICT_A: ("cancelled", due, None), DISTRICT_B: ("open", due, None)}
    )

    # 4. resolved after the deadline, stating a day before it: met, late (the server's day decides)
    monkeypatch.setattr(verification_tasks, "today_in_china", lambda: due + dt.timedelta(days=3))
    r = await enrollment.client.post(
        f"/v1/verification-tasks/{tasks[lost.child_id]}/resolution",
        headers=tokens.headers("school_district", DISTRICT_B),
        json={"outcome": "abroad", "evidence": "出入境记录", "on": (due - dt.timedelta(days=1)).isoformat()},
    )
    assert r.status_code == 200, r.text
    await deadlines_become(
        tasks[lost.child_id], {DISTRICT_A: ("cancelled", due, None), DISTRICT_B: ("met", due, False)}
    )
    # nothing else changed: the reopened task's deadline is still open in its district
    assert await _task_deadlines(notify, tasks[found.child_id]) == {DISTRICT_A: ("open", due, None)}
