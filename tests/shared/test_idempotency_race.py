"""Two requests with one ``Idempotency-Key`` at the same moment (a client retrying before the first
answer arrived): one creates, the other waits for it and replays its answer. Never a 500, never two."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from casework.cases.models import PersuasionAttempt
from casework.visits.models import Visit
from tests.casework.helpers import SCHOOL_A, case_in


async def _count(svc, model) -> int:
    async with svc.ctx.db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


def _one_created_one_replayed(answers) -> None:
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert sorted(str(a.headers.get("Idempotent-Replayed")) for a in answers) == ["None", "true"]
    assert answers[0].json() == answers[1].json()


async def test_concurrent_retries_of_a_create_store_one_and_replay_it(start_service, tokens):
    svc = await start_service("casework")
    case = await case_in(svc, tokens.headers("school", SCHOOL_A), "persuading")
    headers = {**tokens.headers("teacher", SCHOOL_A), "Idempotency-Key": "retry-1"}
    body = {"attempted_on": "2026-11-21", "by": "班主任", "form": "home_visit", "outcome": "considering"}
    url = f"/v1/cases/{case['id']}/persuasions"
    answers = await asyncio.gather(*(svc.client.post(url, json=body, headers=headers) for _ in range(2)))
    _one_created_one_replayed(answers)
    assert await _count(svc, PersuasionAttempt) == 1


async def test_concurrent_retries_of_a_visit_store_one_and_replay_it(start_service, tokens):
    svc = await start_service("casework")
    body = {
        "id": str(uuid.uuid4()),
        "student_id": "stu-1",
        "visited_on": "2026-11-20",
        "form": "home_visit",
        "participants": ["班主任"],
        "semester": "2026-autumn",
    }
    headers = {**tokens.headers("teacher", SCHOOL_A), "Idempotency-Key": f"visit-{body['id']}"}
    answers = await asyncio.gather(
        *(svc.client.post("/v1/visits", json=body, headers=headers) for _ in range(2))
    )
    _one_created_one_replayed(answers)
    assert await _count(svc, Visit) == 1
