"""The same batch submitted twice at the same moment is applied once."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from registry.children.models import Child
from registry.feeds.models import FeedBatch
from tests.registry.conftest import csv_body, dept_headers, wait_job
from tests.registry.people import LI, WANG


async def _count(svc, model) -> int:
    async with svc.ctx.db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def _twice_at_once(svc, tokens, body: bytes, params: dict[str, str], n: int = 4) -> list:
    headers = dept_headers(tokens, "police") | {"Content-Type": "text/csv"}
    return list(
        await asyncio.gather(
            *(
                svc.client.post(
                    "/v1/feeds/police/2026-09/batches", content=body, params=params, headers=headers
                )
                for _ in range(n)
            )
        )
    )


async def _settle(svc, tokens, responses: list) -> str:
    """Exactly one response created the batch, the others answered it as a repeat (202 while it is still
    being applied, 200 once it is final); its job succeeded."""
    assert all(r.status_code in (200, 202) for r in responses), [
        (r.status_code, r.text[:200]) for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    created = [r.json() for r in responses if not r.json()["duplicate"]]
    assert len(created) == 1, [r.text[:200] for r in responses]
    assert next(r for r in responses if not r.json()["duplicate"]).status_code == 202
    job = await wait_job(svc.client, dept_headers(tokens, "police"), created[0]["job_id"])
    assert job["status"] == "succeeded", job
    return str(created[0]["id"])


async def test_concurrent_submissions_with_one_client_batch_id_apply_once(start_service, tokens):
    svc = await start_service("registry")
    responses = await _twice_at_once(svc, tokens, csv_body(WANG.row(), LI.row()), {"client_batch_id": "P-7"})
    await _settle(svc, tokens, responses)
    assert await _count(svc, FeedBatch) == 1 and await _count(svc, Child) == 2


async def test_concurrent_commits_of_the_same_content_apply_once(start_service, tokens):
    svc = await start_service("registry")
    responses = await _twice_at_once(svc, tokens, csv_body(WANG.row(), LI.row()), {})
    await _settle(svc, tokens, responses)
    assert await _count(svc, FeedBatch) == 1 and await _count(svc, Child) == 2
