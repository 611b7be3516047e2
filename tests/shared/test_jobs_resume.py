"""Interrupted jobs taken up again at start-up: ``JobRunner.resume_with`` / ``resume_interrupted``.

Two runners on one database stand for two processes starting at once: each interrupted job of a kind
with a resumer is claimed by one of them only (a conditional UPDATE) and finished; a job whose resumer
cannot finish it stays interrupted; other kinds are left alone. Run on both databases.
"""

from __future__ import annotations

import asyncio
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


async def _job(db: Database, job_id: str, kind: str, status: str) -> None:
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
                created_at=utcnow(),
            )
        )


async def _get(db: Database, runner: JobRunner, job_id: str) -> dict[str, Any]:
    async with db.transaction() as s:
        found = await runner.get(s, job_id)
    assert found is not None
    return found


async def test_interrupted_jobs_are_resumed_once_across_two_processes(db: Database) -> None:
    for job_id, kind in (("a", "import"), ("b", "import"), ("gone", "import"), ("other", "report")):
        await _job(db, job_id, kind, "running")
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
    await first.mark_interrupted()
    started = await asyncio.gather(first.resume_interrupted(), second.resume_interrupted())
    await asyncio.gather(*first.tasks.values(), *second.tasks.values())

    assert sorted(started[0] + started[1]) == ["a", "b"]
    assert sorted(runs) == ["a", "b"]  # each once
    for job_id in ("a", "b"):
        job = await _get(db, first, job_id)
        assert (job["status"], job["error_code"], job["counts"]) == ("succeeded", None, {"rows": 1})
    gone = await _get(db, first, "gone")
    assert (gone["status"], gone["error_code"]) == ("interrupted", "not_resumed")
    other = await _get(db, first, "other")
    assert (other["status"], other["error_code"]) == ("interrupted", "process_restarted")
    # A later start-up tries the one left again; a claim of a finished job is refused.
    assert await first.claim("gone") is True
    assert await first.claim("a") is False
