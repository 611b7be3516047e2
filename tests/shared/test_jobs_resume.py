"""Abandoned jobs taken up again at start-up: ``JobRunner.resume_with`` / ``sweep(start_up=True)``.

Two runners on one database stand for two processes starting at once: each abandoned job (its
heartbeat stale) of a kind with a resumer is claimed by one of them only (a conditional UPDATE) and
finished; a job whose resumer cannot finish it stays interrupted; other kinds are marked interrupted.
Run on both databases. Sibling replicas and the periodic sweep: ``test_jobs_heartbeat.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from sqlalchemy import MetaData, insert

from baoxue.db import Database, utcnow
from baoxue.jobs import JobProgress, JobRunner, JobWork, define_jobs_table
from baoxue.testing.infrastructure import TestInfrastructure

metadata = MetaData()
jobs = define_jobs_table(metadata)


@pytest_asyncio.fixture
async def db(baoxue_infra: TestInfrastructure) -> AsyncIterator[Database]:
    database = Database(baoxue_infra.database_url(f"jobsresume_{secrets.token_hex(3)}"))
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def _job(
    db: Database, job_id: str, kind: str, status: str, *, age: float = 3600.0, owner: str | None = None
) -> None:
    """A job row as a process left it ``age`` seconds after its last heartbeat."""
    then = utcnow() - dt.timedelta(seconds=age)
    async with db.transaction() as s:
        await s.execute(
            insert(jobs).values(
                id=job_id,
                kind=kind,
                status=status,
                progress=0.3,
                counts="{}",
                created_by="u1",
                org="370406D02",
                created_at=then,
                owner=owner,
                heartbeat_at=then,
            )
        )


async def _get(db: Database, runner: JobRunner, job_id: str) -> dict[str, Any]:
    async with db.transaction() as s:
        found = await runner.get(s, job_id)
    assert found is not None
    return found


async def test_interrupted_jobs_are_resumed_once_across_two_processes(db: Database) -> None:
    for job_id, kind in (("a", "import"), ("b", "import"), ("gone", "import"), ("other", "report")):
        await _job(db, job_id, kind, "running", owner="0123456789abcdef.01234567")
    await _job(db, "interrupted", "import", "interrupted")  # by an earlier start-up
    runs: list[str] = []

    def runner() -> JobRunner:
        r = JobRunner(db, jobs)

        async def resume(job: dict[str, Any]) -> JobWork | None:
            if job["id"] == "gone":
                return None  # cannot be finished here

            async def work(progress: JobProgress) -> dict[str, Any]:
                runs.append(job["id"])
                await asyncio.sleep(0.05)  # both processes are resuming at the same moment
                return {"counts": {"rows": 1}}

            return work

        r.resume_with("import", resume)
        return r

    first, second = runner(), runner()
    started = await asyncio.gather(first.sweep(start_up=True), second.sweep(start_up=True))
    await asyncio.gather(*first.tasks.values(), *second.tasks.values())

    assert sorted(started[0] + started[1]) == ["a", "b", "interrupted"]
    assert sorted(runs) == ["a", "b", "interrupted"]  # each once
    for job_id in ("a", "b", "interrupted"):
        job = await _get(db, first, job_id)
        assert (job["status"], job["error_code"], job["counts"]) == ("succeeded", None, {"rows": 1})
    gone = await _get(db, first, "gone")
    assert (gone["status"], gone["error_code"]) == ("interrupted", "not_resumed")
    other = await _get(db, first, "other")
    assert (other["status"], other["error_code"]) == ("interrupted", "heartbeat_lost")
    # A periodic sweep does not try again what a resumer declined (a start-up does).
    assert await first.sweep() == [] and await second.sweep() == []
    # A later start-up tries the one left again; a claim of a finished job is refused.
    assert await first.claim("gone") is True
    assert await first.claim("a") is False
