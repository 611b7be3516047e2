"""Long jobs (feed imports, verification runs, bulletins): 202 Accepted + a job resource.

A job row records kind, status, progress and counts; the work runs as a task in the service process
and reports progress through its own short transactions, so a client polling ``GET /v1/jobs/{id}``
sees it move. A job that was running when its process died is marked ``interrupted`` at start-up.

A service may register a *resumer* per job kind (:meth:`JobRunner.resume_with`): at start-up each
interrupted job of that kind is claimed (one conditional ``UPDATE``, so of several processes starting
at once only one gets it) and handed to the resumer, which returns the work that finishes it (that
work must be idempotent: it may find part of its effect already done) or ``None`` when it cannot
finish here, which leaves the job ``interrupted``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Column, Float, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.db import Database, UTCDateTime, utcnow
from baoxue.observability import current_trace_id, reset_trace_id, set_trace_id

log = logging.getLogger(__name__)

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "interrupted")


def define_jobs_table(metadata: MetaData) -> Table:
    return Table(
        "jobs",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("kind", String(60), nullable=False),
        Column("status", String(20), nullable=False),
        Column("progress", Float, nullable=False, default=0.0),
        Column("counts", Text, nullable=False, default="{}"),
        Column("result", Text),
        Column("error_code", String(100)),
        Column("created_by", String(100), nullable=False),
        Column("org", String(32), nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("started_at", UTCDateTime),
        Column("finished_at", UTCDateTime),
    )


class JobProgress:
    """Handed to a running job: report progress and counts as it goes."""

    def __init__(self, db: Database, table: Table, job_id: str) -> None:
        self.db, self.table, self.job_id = db, table, job_id
        self._last = 0.0

    async def report(
        self, progress: float, counts: dict[str, Any] | None = None, *, force: bool = False
    ) -> None:
        loop_time = asyncio.get_running_loop().time()
        if not force and loop_time - self._last < 0.5:
            return
        self._last = loop_time
        values: dict[str, Any] = {"progress": max(0.0, min(1.0, progress))}
        if counts is not None:
            values["counts"] = json.dumps(counts, ensure_ascii=False)
        async with self.db.transaction() as session:
            await session.execute(update(self.table).where(self.table.c.id == self.job_id).values(**values))


JobWork = Callable[[JobProgress], Awaitable[dict[str, Any]]]
JobResume = Callable[[dict[str, Any]], Awaitable[JobWork | None]]
"""Given an interrupted job (its row, as :meth:`JobRunner.get` returns it): the work that finishes it."""


class JobRunner:
    """Creates job rows and runs their work in background tasks of this process."""

    def __init__(self, db: Database, table: Table) -> None:
        self.db = db
        self.table = table
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.resumers: dict[str, JobResume] = {}

    def resume_with(self, kind: str, resume: JobResume) -> None:
        """Let :meth:`resume_interrupted` finish interrupted jobs of ``kind`` with ``resume``."""
        self.resumers[kind] = resume

    async def create(self, session: AsyncSession, *, kind: str, created_by: str, org: str) -> str:
        job_id = str(uuid.uuid4())
        await session.execute(
            insert(self.table).values(
                id=job_id,
                kind=kind,
                status="queued",
                progress=0.0,
                counts="{}",
                created_by=created_by,
                org=org,
                created_at=utcnow(),
            )
        )
        return job_id

    def start(self, job_id: str, work: JobWork) -> asyncio.Task[None]:
        """Run ``work`` for a job already committed by :meth:`create`. ``work`` returns the result counts."""
        trace = current_trace_id()
        task = asyncio.create_task(self._run(job_id, work, trace), name=f"job-{job_id}")
        self.tasks[job_id] = task
        # Only this task's own entry: a job taken up again while an earlier task of it is still ending
        # must stay listed (shutdown cancels what is listed).
        task.add_done_callback(lambda t: self.tasks.pop(job_id) if self.tasks.get(job_id) is t else None)
        return task

    async def _run(self, job_id: str, work: JobWork, trace: str) -> None:
        token = set_trace_id(trace)
        t = self.table
        try:
            async with self.db.transaction() as session:
                await session.execute(
                    update(t).where(t.c.id == job_id).values(status="running", started_at=utcnow())
                )
            result = await work(JobProgress(self.db, t, job_id))
            async with self.db.transaction() as session:
                await session.execute(
                    update(t)
                    .where(t.c.id == job_id)
                    .values(
                        status="succeeded",
                        progress=1.0,
                        finished_at=utcnow(),
                        counts=json.dumps(result.get("counts", {}), ensure_ascii=False),
                        result=json.dumps(result, ensure_ascii=False, default=str),
                    )
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code = getattr(exc, "code", None) or type(exc).__name__
            log.error("job failed", extra={"job_id": job_id, "error_type": type(exc).__name__})
            async with self.db.transaction() as session:
                await session.execute(
                    update(t)
                    .where(t.c.id == job_id)
                    .values(status="failed", finished_at=utcnow(), error_code=code)
                )
        finally:
            reset_trace_id(token)

    async def get(self, session: AsyncSession, job_id: str) -> dict[str, Any] | None:
        row = (await session.execute(select(self.table).where(self.table.c.id == job_id))).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["counts"] = json.loads(out["counts"] or "{}")
        out["result"] = json.loads(out["result"]) if out["result"] else None
        return out

    async def mark_interrupted(self) -> None:
        """At start-up: jobs left running by a dead process will not finish by themselves."""
        t = self.table
        async with self.db.transaction() as session:
            await session.execute(
                update(t)
                .where(t.c.status.in_(("queued", "running")))
                .values(status="interrupted", finished_at=utcnow(), error_code="process_restarted")
            )

    async def interrupt(self, session: AsyncSession, job_id: str, code: str) -> None:
        """Put a claimed job that cannot run now back to ``interrupted`` (a later start-up tries again)."""
        t = self.table
        await session.execute(
            update(t)
            .where(t.c.id == job_id, t.c.status == "queued")
            .values(status="interrupted", finished_at=utcnow(), error_code=code)
        )

    async def claim(self, job_id: str, *, statuses: tuple[str, ...] = ("interrupted",)) -> bool:
        """Take a job back into the queue if it is in one of ``statuses``; True for the one caller that did.

        One conditional ``UPDATE``: of several processes claiming the same job at once, one gets it.
        """
        t = self.table
        async with self.db.transaction() as session:
            result = await session.execute(
                update(t)
                .where(t.c.id == job_id, t.c.status.in_(statuses))
                .values(status="queued", finished_at=None, error_code=None)
            )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def resume_interrupted(self) -> list[str]:
        """At start-up, after :meth:`mark_interrupted`: start again every interrupted job whose kind has a
        resumer. Returns the ids of the jobs started."""
        if not self.resumers:
            return []
        t = self.table
        async with self.db.transaction() as session:
            ids = (
                (
                    await session.execute(
                        select(t.c.id)
                        .where(t.c.status == "interrupted", t.c.kind.in_(list(self.resumers)))
                        .order_by(t.c.created_at)
                    )
                )
                .scalars()
                .all()
            )
        started = []
        for job_id in ids:
            if job_id in self.tasks or not await self.claim(job_id):
                continue
            async with self.db.transaction() as session:
                job = await self.get(session, job_id)
            work: JobWork | None = None
            if job is not None:
                try:
                    work = await self.resumers[job["kind"]](job)
                except Exception as exc:
                    log.error("job resume failed", extra={"job_id": job_id, "error_type": type(exc).__name__})
            if work is None:
                async with self.db.transaction() as session:
                    await self.interrupt(session, job_id, "not_resumed")
                continue
            log.info("job resumed", extra={"job_id": job_id, "kind": job["kind"] if job else None})
            self.start(job_id, work)
            started.append(job_id)
        return started
