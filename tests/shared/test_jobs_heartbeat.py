"""Jobs with several replicas: owner, heartbeat, and the sweep (``baoxue.jobs``).

Each ``JobRunner`` here stands for one process of a service; several share one real database (SQLite
file or PostgreSQL, whichever the run uses). A process "dies" by having its job task cancelled and its
replica slot released without the graceful ``close()`` (which would hand its jobs over): its job rows
stay ``running`` as a SIGKILL leaves them. Waits poll a condition with a generous cap; nothing asserts
on elapsed time.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event

from baoxue.db import Database
from baoxue.jobs import JobProgress, JobRunner, JobWork
from baoxue.settings import ServiceSettings
from baoxue.testing.infrastructure import TestInfrastructure
from tests.shared.test_jobs_resume import _get, jobs, metadata

CAP = 60.0  # seconds: generous, for a loaded machine


@pytest_asyncio.fixture
async def db(baoxue_infra: TestInfrastructure) -> AsyncIterator[Database]:
    database = Database(baoxue_infra.database_url(f"jobsbeat_{secrets.token_hex(3)}"))
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


@pytest_asyncio.fixture
async def runners(db: Database) -> AsyncIterator[Callable[..., JobRunner]]:
    """Make runners (processes) on the test's database; their tasks are cancelled at the end."""
    made: list[JobRunner] = []

    def make(**kw: Any) -> JobRunner:
        runner = JobRunner(db, jobs, **kw)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        for task in list(runner.tasks.values()):
            task.cancel()
        await asyncio.gather(*runner.tasks.values(), return_exceptions=True)
        if runner._slot is not None:
            os.close(runner._slot[0])


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CAP
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"not within {CAP} s: {what}")
        await asyncio.sleep(0.02)


def _die(runner: JobRunner) -> None:
    """The process is killed: its tasks stop, its slot's lock goes, its job rows stay as they are."""
    for task in runner.tasks.values():
        task.cancel()
    if runner._slot is not None:
        os.close(runner._slot[0])
        runner._slot = None


class Gate:
    """Work that runs until opened, counting how often it was run."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.runs: list[str] = []

    def work(self, name: str) -> JobWork:
        async def run(progress: JobProgress) -> dict[str, Any]:
            self.runs.append(name)
            await progress.report(0.5, {"step": 1}, force=True)
            await self.opened.wait()
            return {"counts": {"done": 1}}

        return run

    def resumer(self, name: str) -> Callable[[dict[str, Any]], Awaitable[JobWork | None]]:
        async def resume(job: dict[str, Any]) -> JobWork | None:
            return self.work(name)

        return resume


async def _create(db: Database, runner: JobRunner, kind: str = "import") -> str:
    async with db.transaction() as s:
        return await runner.create(s, kind=kind, created_by="u1", org="370406D02")


async def _running(db: Database, runner: JobRunner, job_id: str) -> None:
    async def check() -> bool:
        return (await _get(db, runner, job_id))["status"] == "running"

    await _until(check, "job running")


async def test_a_siblings_live_job_is_left_alone_by_another_process_starting(
    db: Database, runners: Callable[..., JobRunner], tmp_path: Path
) -> None:
    gate = Gate()
    first = runners()
    first.open(tmp_path)
    first.resume_with("import", gate.resumer("first"))
    job_id = await _create(db, first)
    first.start(job_id, gate.work("first"))
    await _running(db, first, job_id)

    # A sibling replica starts (same host: it gets a slot of its own) and sweeps as at start-up.
    sibling = runners()
    sibling.open(tmp_path)
    sibling.resume_with("import", gate.resumer("sibling"))
    assert sibling.replica != first.replica
    assert await sibling.sweep(start_up=True) == []
    assert await sibling.mark_interrupted() == 0
    assert await sibling.alive(job_id)
    assert not await sibling.claim(job_id, statuses=("queued", "running", "interrupted"))
    job = await _get(db, first, job_id)
    assert (job["status"], job["owner"], job["error_code"]) == ("running", first.owner, None)

    gate.opened.set()
    await first.tasks[job_id]
    job = await _get(db, first, job_id)
    assert (job["status"], job["counts"], gate.runs) == ("succeeded", {"done": 1}, ["first"])


async def test_an_abandoned_job_is_resumed_once_by_the_surviving_processes(
    db: Database, runners: Callable[..., JobRunner], tmp_path: Path
) -> None:
    gate = Gate()
    beat = {"heartbeat_seconds": 0.2, "stale_after_seconds": 2.0}
    dead = runners(**beat)
    dead.open(tmp_path)
    job_id = await _create(db, dead)
    dead.start(job_id, gate.work("dead"))
    await _running(db, dead, job_id)
    survivors = [runners(**beat), runners(**beat)]
    for i, runner in enumerate(survivors):
        runner.open(tmp_path)
        runner.resume_with("import", gate.resumer(f"survivor-{i}"))
    _die(dead)

    # The survivors' background loops (heartbeat + sweep) race for the job once its heartbeat is stale.
    loops = [asyncio.create_task(r.keep_alive()) for r in survivors]
    try:

        async def taken() -> bool:
            return any(job_id in r.tasks for r in survivors)

        await _until(taken, "a survivor resumed the job")
        owner = next(r for r in survivors if job_id in r.tasks)
        await _running(db, owner, job_id)
        gate.opened.set()
        await owner.tasks[job_id]
        # More sweeps go by: nobody runs the finished job again.
        for r in survivors:
            await r.heartbeat()
            await r.sweep()
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
    job = await _get(db, owner, job_id)
    assert (job["status"], job["owner"], job["error_code"], job["counts"]) == (
        "succeeded",
        owner.owner,
        None,
        {"done": 1},
    )
    assert gate.runs[0] == "dead" and len(gate.runs) == 2 and gate.runs[1].startswith("survivor-")


async def test_two_sweeps_racing_for_a_stale_job_resume_it_exactly_once(
    db: Database, runners: Callable[..., JobRunner]
) -> None:
    gate = Gate()
    gate.opened.set()
    beat = {"heartbeat_seconds": 0.2, "stale_after_seconds": 1.0}
    dead = runners(**beat)
    ids = [await _create(db, dead) for _ in range(5)]
    other = await _create(db, dead, kind="report")  # no resumer: marked interrupted, not resumed
    a, b = runners(**beat), runners(**beat)
    for name, r in (("a", a), ("b", b)):
        r.resume_with("import", gate.resumer(name))

    async def stale() -> bool:
        return not any([await a.alive(job_id) for job_id in [*ids, other]])

    await _until(stale, "the dead process's jobs go stale")
    started = await asyncio.gather(a.sweep(), b.sweep())
    await asyncio.gather(*a.tasks.values(), *b.tasks.values())
    assert sorted(started[0] + started[1]) == sorted(ids)
    assert len(gate.runs) == len(ids)
    for job_id in ids:
        assert (await _get(db, a, job_id))["status"] == "succeeded"
    job = await _get(db, a, other)
    assert (job["status"], job["error_code"]) == ("interrupted", "heartbeat_lost")


async def test_the_heartbeat_keeps_a_long_job_alive_past_the_staleness_threshold(
    db: Database, runners: Callable[..., JobRunner]
) -> None:
    gate = Gate()
    beat = {"heartbeat_seconds": 0.2, "stale_after_seconds": 2.0}
    owner = runners(**beat)
    sibling = runners(**beat)
    sibling.resume_with("import", gate.resumer("sibling"))
    job_id = await _create(db, owner)
    owner.start(job_id, gate.work("owner"))
    await _running(db, owner, job_id)
    first_beat = (await _get(db, owner, job_id))["heartbeat_at"]
    loops = [asyncio.create_task(owner.keep_alive()), asyncio.create_task(sibling.keep_alive())]
    try:

        async def refreshed_past_threshold() -> bool:
            job = await _get(db, owner, job_id)
            return bool((job["heartbeat_at"] - first_beat).total_seconds() > 2 * 2.0)

        await _until(refreshed_past_threshold, "the heartbeat refreshed for longer than the threshold")
        # The sibling swept all that time, and once more now: the job is still the owner's, never resumed.
        assert await sibling.sweep() == []
        job = await _get(db, owner, job_id)
        assert (job["status"], job["owner"], job["progress"]) == ("running", owner.owner, 0.5)
        assert gate.runs == ["owner"] and not sibling.tasks
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
    gate.opened.set()
    await owner.tasks[job_id]
    assert (await _get(db, owner, job_id))["status"] == "succeeded"


async def test_one_update_refreshes_every_job_of_a_process(
    db: Database, runners: Callable[..., JobRunner]
) -> None:
    gate = Gate()
    runner = runners()
    ids = [await _create(db, runner) for _ in range(4)]
    for job_id in ids:
        runner.start(job_id, gate.work(job_id))
    for job_id in ids:
        await _running(db, runner, job_id)
    before = {job_id: (await _get(db, runner, job_id))["heartbeat_at"] for job_id in ids}
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await runner.heartbeat()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    dml = [
        s.lstrip().split()[0].upper()
        for s in statements
        if s.lstrip().upper().startswith(("UPDATE", "SELECT"))
    ]
    assert dml == ["UPDATE"], statements
    for job_id in ids:
        assert (await _get(db, runner, job_id))["heartbeat_at"] >= before[job_id]
    gate.opened.set()
    await asyncio.gather(*runner.tasks.values())


async def test_a_restarted_process_takes_over_its_earlier_jobs_at_start_up(
    db: Database, runners: Callable[..., JobRunner], tmp_path: Path
) -> None:
    gate = Gate()
    before = runners()  # default threshold (60 s): its heartbeat is fresh when it dies
    before.open(tmp_path)
    job_id = await _create(db, before)
    report_id = await _create(db, before, kind="report")
    before.start(job_id, gate.work("before"))
    await _running(db, before, job_id)
    sibling = runners()  # alive all along, on another slot
    sibling.open(tmp_path)
    _die(before)

    after = runners()  # the same replica started again: the free slot is the dead process's
    after.open(tmp_path)
    assert (after.replica, after.owner != before.owner) == (before.replica, True)
    after.resume_with("import", gate.resumer("after"))
    assert await after.sweep(start_up=True) == [job_id]
    report = await _get(db, after, report_id)
    assert (report["status"], report["error_code"]) == ("interrupted", "process_restarted")
    # The sibling, for whom the dead process is another replica, would have waited for staleness.
    assert sibling.replica != before.replica
    gate.opened.set()
    await after.tasks[job_id]
    job = await _get(db, after, job_id)
    assert (job["status"], job["owner"], gate.runs) == ("succeeded", after.owner, ["before", "after"])


async def test_a_process_stopping_gracefully_hands_its_jobs_to_a_siblings_next_sweep(
    db: Database, runners: Callable[..., JobRunner], tmp_path: Path
) -> None:
    gate = Gate()
    stopping = runners()
    stopping.open(tmp_path)
    job_id = await _create(db, stopping)
    stopping.start(job_id, gate.work("stopping"))
    await _running(db, stopping, job_id)
    task = stopping.tasks[job_id]
    task.cancel()  # as the app's shutdown does
    await asyncio.gather(task, return_exceptions=True)
    await stopping.close()
    job = await _get(db, stopping, job_id)
    assert (job["status"], job["error_code"]) == ("interrupted", "process_stopped")

    sibling = runners()
    sibling.resume_with("import", gate.resumer("sibling"))
    assert await sibling.sweep() == [job_id]  # a periodic sweep, not only a start-up
    gate.opened.set()
    await sibling.tasks[job_id]
    assert (await _get(db, sibling, job_id))["status"] == "succeeded"


async def test_a_paused_owner_whose_job_was_taken_over_stops_its_task_and_writes_nothing(
    db: Database, runners: Callable[..., JobRunner]
) -> None:
    gate = Gate()
    beat = {"heartbeat_seconds": 0.2, "stale_after_seconds": 1.0}
    paused = runners(**beat)  # runs the job but does not heartbeat (a long GC pause, a network split)
    job_id = await _create(db, paused)
    paused.start(job_id, gate.work("paused"))
    await _running(db, paused, job_id)
    other = runners(**beat)
    other.resume_with("import", gate.resumer("other"))

    async def taken() -> bool:
        return await other.sweep() == [job_id]

    await _until(taken, "the other process took the stale job")
    old_task = paused.tasks[job_id]
    await paused.heartbeat()  # the paused process wakes up: the job is no longer its own
    with pytest.raises(asyncio.CancelledError):
        await old_task
    await paused.heartbeat()
    # The taken-over job is "queued" until the other process's task starts it (a loaded machine may take a
    # moment; the full embedded suite once read "queued" here): wait for that, then check the owner.
    await _running(db, other, job_id)
    job = await _get(db, other, job_id)
    assert (job["status"], job["owner"]) == ("running", other.owner)
    gate.opened.set()
    await other.tasks[job_id]
    job = await _get(db, other, job_id)
    assert (job["status"], job["owner"], gate.runs) == ("succeeded", other.owner, ["paused", "other"])


async def test_a_late_heartbeat_takes_back_a_job_marked_interrupted_but_not_yet_claimed(
    db: Database, runners: Callable[..., JobRunner]
) -> None:
    gate = Gate()
    beat = {"heartbeat_seconds": 0.2, "stale_after_seconds": 1.0}
    late = runners(**beat)
    job_id = await _create(db, late, kind="report")  # no process has a resumer for it
    late.start(job_id, gate.work("late"))
    await _running(db, late, job_id)
    other = runners(**beat)

    async def marked() -> bool:
        return await other.mark_interrupted() == 1

    await _until(marked, "the stale job marked interrupted")
    await late.heartbeat()
    job = await _get(db, late, job_id)
    assert (job["status"], job["owner"], job["error_code"], job["finished_at"]) == (
        "running",
        late.owner,
        None,
        None,
    )
    gate.opened.set()
    await late.tasks[job_id]
    assert (await _get(db, late, job_id))["status"] == "succeeded"


async def test_job_settings_are_validated(db: Database) -> None:
    settings = ServiceSettings()
    assert (settings.job_heartbeat_seconds, settings.job_stale_after_seconds) == (10.0, 60.0)
    with pytest.raises(ValueError, match="3 × job_heartbeat_seconds"):
        ServiceSettings(job_heartbeat_seconds=30, job_stale_after_seconds=60)
    with pytest.raises(ValueError):
        ServiceSettings(job_heartbeat_seconds=0)
    with pytest.raises(ValueError):
        JobRunner(db, jobs, heartbeat_seconds=1, stale_after_seconds=2)
