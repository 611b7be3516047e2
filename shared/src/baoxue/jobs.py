"""Long jobs (feed imports, verification runs, bulletins): 202 Accepted + a job resource.

A job row records kind, status, progress and counts; the work runs as a task in the service process
and reports progress through its own short transactions, so a client polling ``GET /v1/jobs/{id}``
sees it move.

Several replicas of a service share one jobs table, so every job names its **owner** (an opaque id
of the process running it, ``<replica>.<process>``) and carries a **heartbeat**: every
``heartbeat_seconds`` the owning process refreshes ``heartbeat_at`` of all the jobs it runs in one
``UPDATE`` (:meth:`JobRunner.heartbeat`). A queued or running job is *abandoned* when its heartbeat is
older than ``stale_after_seconds`` (its process died, hangs, or lost the database for that long) or
when its owner is an earlier process of this same replica (which is then dead for sure: see
:meth:`JobRunner.open`). A sibling's live job is never touched.

At start-up and then every heartbeat interval, each process *sweeps* (:meth:`JobRunner.sweep`):

- a service may register a *resumer* per job kind (:meth:`JobRunner.resume_with`). Each abandoned or
  interrupted job of such a kind is claimed (one conditional ``UPDATE``, so of several processes
  sweeping at once only one gets it) and handed to the resumer, which returns the work that finishes
  it (that work must be idempotent: it may find part of its effect already done) or ``None`` when it
  cannot finish here, which leaves the job ``interrupted`` (``not_resumed``; tried again at the next
  start-up, not by every sweep);
- every other abandoned job is marked ``interrupted`` (``heartbeat_lost`` or ``process_restarted``).

A process that stops gracefully marks the jobs it was running ``interrupted`` (``process_stopped``), so
a sibling takes them up at its next sweep. A process that finds one of its running jobs taken over by
another (it was paused longer than the staleness threshold) cancels its own task of it, and a job's
progress and result are written only by its current owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.db import Database, UTCDateTime, patient_writes, utcnow
from baoxue.observability import current_trace_id, reset_trace_id, set_trace_id

log = logging.getLogger(__name__)

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "interrupted")
ACTIVE = ("queued", "running")
ABANDONED_CODES = ("heartbeat_lost", "process_restarted", "process_stopped")
"""``error_code`` of jobs made ``interrupted`` because their process went away: a sweep resumes them."""

DEFAULT_HEARTBEAT_SECONDS = 10.0
DEFAULT_STALE_AFTER_SECONDS = 60.0
_REPLICA = re.compile(r"[0-9a-f]{16}")


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
        # The process that runs (or last ran) the job: an opaque "<replica>.<process>" of random hex.
        Column("owner", String(40)),
        Column("heartbeat_at", UTCDateTime),
        Index("ix_jobs_status", "status"),
    )


class JobProgress:
    """Handed to a running job: report progress and counts as it goes."""

    def __init__(self, db: Database, table: Table, job_id: str, owner: str | None = None) -> None:
        self.db, self.table, self.job_id, self.owner = db, table, job_id, owner
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
        t = self.table
        mine = t.c.owner == self.owner if self.owner is not None else t.c.id.is_not(None)
        async with self.db.transaction() as session:
            await session.execute(update(t).where(t.c.id == self.job_id, mine).values(**values))


JobWork = Callable[[JobProgress], Awaitable[dict[str, Any]]]
JobResume = Callable[[dict[str, Any]], Awaitable[JobWork | None]]
"""Given an interrupted job (its row, as :meth:`JobRunner.get` returns it): the work that finishes it."""


class JobRunner:
    """Creates job rows and runs their work in background tasks of this process."""

    def __init__(
        self,
        db: Database,
        table: Table,
        *,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        stale_after_seconds: float = DEFAULT_STALE_AFTER_SECONDS,
    ) -> None:
        if heartbeat_seconds <= 0 or stale_after_seconds < 3 * heartbeat_seconds:
            raise ValueError("a job's heartbeat must be positive and go stale after three of them at least")
        self.db = db
        self.table = table
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after = timedelta(seconds=stale_after_seconds)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.resumers: dict[str, JobResume] = {}
        # Until open(): a replica of its own, so no job is ever taken for an earlier process's.
        self.replica = secrets.token_hex(8)
        self.owner = f"{self.replica}.{secrets.token_hex(4)}"
        self._slot: tuple[int, Path] | None = None

    # -- identity -----------------------------------------------------------------------------------

    def open(self, directory: Path | None = None) -> None:
        """Take this process's replica identity: the lowest free *slot* of this database's jobs table
        on this host (a file under ``directory``, default ``$TMPDIR/baoxue-jobs``, held with an
        exclusive ``flock`` for the process's life). The file keeps a random replica id, so a process
        that restarts after a crash takes the same slot and id, and knows the jobs of the dead process
        (``<replica>.<other process>``) are abandoned without waiting for their heartbeat to go stale.
        Live processes on one host hold different slots. The id says nothing about the host.
        Without a usable directory the process keeps a replica id of its own (staleness only)."""
        if self._slot is not None:
            return
        directory = directory or Path(tempfile.gettempdir()) / "baoxue-jobs"
        key = hashlib.sha256(f"{self.db.url}|{self.table.name}".encode()).hexdigest()[:16]
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            for n in range(256):
                taken = _take_slot(directory / f"{key}-{n}.id")
                if taken is not None:
                    fd, replica = taken
                    self._slot = (fd, directory / f"{key}-{n}.id")
                    self.replica = replica
                    self.owner = f"{replica}.{secrets.token_hex(4)}"
                    return
        except OSError as exc:
            log.warning("job replica identity unavailable", extra={"error_type": type(exc).__name__})

    async def close(self) -> None:
        """At a graceful stop, after the job tasks were cancelled: this process's unfinished jobs become
        ``interrupted`` (``process_stopped``) for a sibling's next sweep; the slot is given back."""
        t = self.table
        marked = False
        try:
            async with self.db.transaction() as session:
                await session.execute(
                    update(t)
                    .where(t.c.owner == self.owner, t.c.status.in_(ACTIVE))
                    .values(status="interrupted", finished_at=utcnow(), error_code="process_stopped")
                )
            marked = True
        finally:
            if self._slot is not None:
                fd, path = self._slot
                self._slot = None
                if marked:  # nothing left for a restart of this replica to recognise
                    path.unlink(missing_ok=True)
                os.close(fd)

    # -- creating and running -----------------------------------------------------------------------

    def resume_with(self, kind: str, resume: JobResume) -> None:
        """Let :meth:`resume_interrupted` finish interrupted jobs of ``kind`` with ``resume``."""
        self.resumers[kind] = resume

    async def create(self, session: AsyncSession, *, kind: str, created_by: str, org: str) -> str:
        job_id = str(uuid.uuid4())
        now = utcnow()
        await session.execute(
            insert(self.table).values(
                id=job_id,
                kind=kind,
                status="queued",
                progress=0.0,
                counts="{}",
                created_by=created_by,
                org=org,
                created_at=now,
                owner=self.owner,
                heartbeat_at=now,
            )
        )
        return job_id

    def start(self, job_id: str, work: JobWork) -> asyncio.Task[None]:
        """Run ``work`` for a job this process created (:meth:`create`) or claimed (:meth:`claim`), once
        committed. ``work`` returns the result counts."""
        trace = current_trace_id()
        task = asyncio.create_task(self._run(job_id, work, trace), name=f"job-{job_id}")
        self.tasks[job_id] = task
        # Only this task's own entry: a job taken up again while an earlier task of it is still ending
        # must stay listed (shutdown cancels what is listed).
        task.add_done_callback(lambda t: self.tasks.pop(job_id) if self.tasks.get(job_id) is t else None)
        return task

    async def _run(self, job_id: str, work: JobWork, trace: str) -> None:
        with patient_writes():  # a job waits for SQLite's write lock; nobody waits on it to answer
            await self._run_patiently(job_id, work, trace)

    async def _run_patiently(self, job_id: str, work: JobWork, trace: str) -> None:
        token = set_trace_id(trace)
        t = self.table
        mine = and_(t.c.id == job_id, t.c.owner == self.owner)
        try:
            async with self.db.transaction() as session:
                now = utcnow()
                started = await session.execute(
                    update(t)
                    .where(mine, t.c.status.in_(ACTIVE))
                    .values(status="running", started_at=now, heartbeat_at=now)
                )
            if _rowcount(started) != 1:
                log.warning("job not started: another process owns it", extra={"job_id": job_id})
                return
            result = await work(JobProgress(self.db, t, job_id, self.owner))
            async with self.db.transaction() as session:
                done = await session.execute(
                    update(t)
                    .where(mine)
                    .values(
                        status="succeeded",
                        progress=1.0,
                        finished_at=utcnow(),
                        error_code=None,
                        counts=json.dumps(result.get("counts", {}), ensure_ascii=False),
                        result=json.dumps(result, ensure_ascii=False, default=str),
                    )
                )
            if _rowcount(done) != 1:
                log.warning("job result not recorded: another process owns it", extra={"job_id": job_id})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code = getattr(exc, "code", None) or type(exc).__name__
            log.error("job failed", extra={"job_id": job_id, "error_type": type(exc).__name__})
            async with self.db.transaction() as session:
                await session.execute(
                    update(t).where(mine).values(status="failed", finished_at=utcnow(), error_code=code)
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

    # -- liveness -----------------------------------------------------------------------------------

    def _abandoned(self) -> ColumnElement[bool]:
        """A queued or running job whose process is gone: heartbeat stale, or an earlier process of
        this replica. Never one of this process's running tasks."""
        t = self.table
        stale = func.coalesce(t.c.heartbeat_at, t.c.created_at) < utcnow() - self.stale_after
        return and_(
            t.c.status.in_(ACTIVE),
            or_(stale, self._earlier_process()),
            t.c.id.not_in(list(self.tasks)) if self.tasks else t.c.id.is_not(None),
        )

    def _earlier_process(self) -> ColumnElement[bool]:
        if self._slot is None:
            return false()
        t = self.table
        return and_(t.c.owner.startswith(f"{self.replica}.", autoescape=True), t.c.owner != self.owner)

    async def heartbeat(self) -> None:
        """Refresh the heartbeat of every job this process runs, in one ``UPDATE``. A job of ours that a
        sibling marked ``interrupted`` meanwhile (we were paused too long) is taken back; one that a
        sibling has claimed is no longer ours: its task here is cancelled."""
        ids = list(self.tasks)
        if not ids:
            return
        t = self.table
        async with self.db.transaction() as session:
            refreshed = await session.execute(
                update(t)
                .where(t.c.id.in_(ids), t.c.owner == self.owner, t.c.status.in_((*ACTIVE, "interrupted")))
                .values(
                    heartbeat_at=utcnow(),
                    status=case((t.c.status == "interrupted", "running"), else_=t.c.status),
                    finished_at=None,  # as for every queued or running job
                    error_code=None,
                )
            )
        if _rowcount(refreshed) == len(ids):
            return
        async with self.db.transaction() as session:
            lost = (
                (
                    await session.execute(
                        select(t.c.id).where(
                            t.c.id.in_(ids), or_(t.c.owner.is_(None), t.c.owner != self.owner)
                        )
                    )
                )
                .scalars()
                .all()
            )
        for job_id in lost:
            task = self.tasks.get(job_id)
            if task is not None:
                log.warning("job taken over by another process; stopping it here", extra={"job_id": job_id})
                task.cancel()

    async def mark_interrupted(self) -> int:
        """Abandoned jobs (see :meth:`_abandoned`) become ``interrupted``: ``process_restarted`` when an
        earlier process of this replica ran them, else ``heartbeat_lost``. Returns how many."""
        t = self.table
        async with self.db.transaction() as session:
            result = await session.execute(
                update(t)
                .where(self._abandoned())
                .values(
                    status="interrupted",
                    finished_at=utcnow(),
                    error_code=case((self._earlier_process(), "process_restarted"), else_="heartbeat_lost"),
                )
            )
        return _rowcount(result)

    async def interrupt(self, session: AsyncSession, job_id: str, code: str) -> None:
        """Put a claimed job that cannot run now back to ``interrupted`` (a later start-up tries again)."""
        t = self.table
        await session.execute(
            update(t)
            .where(t.c.id == job_id, t.c.status == "queued")
            .values(status="interrupted", finished_at=utcnow(), error_code=code)
        )

    async def claim(self, job_id: str, *, statuses: tuple[str, ...] = ("interrupted",)) -> bool:
        """Take a job for this process if it is ``interrupted`` (and that is in ``statuses``) or queued or
        running but abandoned (and that status is in ``statuses``); True for the one caller that did.
        A sibling's live job is never claimed.

        One conditional ``UPDATE``: of several processes claiming the same job at once, one gets it.
        """
        t = self.table
        claimable = []
        if "interrupted" in statuses:
            claimable.append(t.c.status == "interrupted")
        active = [s for s in statuses if s in ACTIVE]
        if active:
            claimable.append(and_(t.c.status.in_(active), self._abandoned()))
        if not claimable:
            return False
        now = utcnow()
        async with self.db.transaction() as session:
            result = await session.execute(
                update(t)
                .where(t.c.id == job_id, or_(*claimable))
                .values(
                    status="queued", finished_at=None, error_code=None, owner=self.owner, heartbeat_at=now
                )
            )
        return _rowcount(result) == 1

    async def alive(self, job_id: str) -> bool:
        """True when the job is queued or running in a live process (this one or a sibling)."""
        t = self.table
        async with self.db.transaction() as session:
            found = (
                await session.execute(
                    select(t.c.id).where(t.c.id == job_id, t.c.status.in_(ACTIVE), ~self._abandoned())
                )
            ).first()
        return found is not None or job_id in self.tasks

    # -- the sweep ----------------------------------------------------------------------------------

    async def resume_interrupted(self, *, start_up: bool = True) -> list[str]:
        """Start again every abandoned or interrupted job whose kind has a resumer; the ids started.

        At start-up every interrupted job of those kinds is tried; in a periodic sweep only those whose
        process went away (``ABANDONED_CODES``), not one a resumer already declined (``not_resumed``).
        """
        if not self.resumers:
            return []
        t = self.table
        interrupted = t.c.status == "interrupted"
        if not start_up:
            interrupted = and_(interrupted, t.c.error_code.in_(ABANDONED_CODES))
        async with self.db.transaction() as session:
            ids = (
                (
                    await session.execute(
                        select(t.c.id)
                        .where(t.c.kind.in_(list(self.resumers)), or_(interrupted, self._abandoned()))
                        .order_by(t.c.created_at)
                    )
                )
                .scalars()
                .all()
            )
        started = []
        for job_id in ids:
            if job_id in self.tasks or not await self.claim(job_id, statuses=(*ACTIVE, "interrupted")):
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

    async def sweep(self, *, start_up: bool = False) -> list[str]:
        """Resume what can be resumed, then mark the remaining abandoned jobs ``interrupted``."""
        started = await self.resume_interrupted(start_up=start_up)
        await self.mark_interrupted()
        return started

    async def keep_alive(self) -> None:
        """The background loop: every heartbeat interval, refresh our jobs' heartbeats, then sweep."""
        with patient_writes():
            await self._keep_alive()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            await self.heartbeat()
            await self.sweep()


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _take_slot(path: Path) -> tuple[int, str] | None:
    """Lock the slot file at ``path`` (non-blocking); its file descriptor and replica id, or None when
    a live process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # Its holder may have removed the file between our open and our lock: lock the file at the path.
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if not current:
            os.close(fd)
            continue
        try:
            replica = os.read(fd, 64).decode("ascii", "replace").strip()
            if not _REPLICA.fullmatch(replica):
                replica = secrets.token_hex(8)
                os.ftruncate(fd, 0)
                os.pwrite(fd, replica.encode(), 0)
                os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        return fd, replica
