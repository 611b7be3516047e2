"""A feed batch acknowledged with 202 is applied exactly once even when its process dies mid-job.

The process "dies" here by its job task being cancelled at a chosen point (staging, or inside the merge
transaction) with the batch and job rows left as a killed process leaves them (``running``, its
heartbeat no longer refreshed), its kept submission file on disk; then other replicas of the service
run on the same database and var dir (second apps, started while the first is still up: they take the
job up once its heartbeat is stale, by their periodic sweep; short heartbeat settings here).
``tests/reliability/test_service_sigkill.py`` does the same with real SIGKILLs of a real process and
restarts of the same replica (which take its jobs up at start-up).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from baoxue.pii.citizen_id import check_character
from registry.children.models import Child
from registry.feeds import ingest
from registry.feeds.models import FeedBatch, FeedRow
from registry.feeds.uploads import batch_file, spool_dir
from tests.registry.conftest import HEADER, dept_headers, outbox_events

ROWS = 12
# Every app of these tests beats fast and counts a job abandoned after 2 s without a heartbeat.
JOBS = {"job_heartbeat_seconds": 0.2, "job_stale_after_seconds": 2.0}
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳"


def _body(fmt: str = "ndjson", n: int = ROWS) -> bytes:
    rows = []
    for i in range(n):
        birth = dt.date(2015, 3, 1) + dt.timedelta(days=i)
        first17 = f"370406{birth:%Y%m%d}{i:03d}"
        idn = first17 + check_character(first17)
        sex = "男" if int(idn[16]) % 2 else "女"
        rows.append(("张" + _GIVEN[i % len(_GIVEN)], idn, sex, birth.isoformat(), "山亭区店子镇前庄村12号"))
    if fmt == "csv":  # GBK, as spreadsheets save it: the resumed job must detect the encoding again
        lines = [HEADER] + [f"{nm},{idn},{sex},{b},{addr},,,,常住,," for nm, idn, sex, b, addr in rows]
        return ("\n".join(lines) + "\n").encode("gbk")
    keys = ("姓名", "身份证号", "性别", "出生日期", "户籍地址")
    lines = [json.dumps(dict(zip(keys, r, strict=True)) | {"类别": "常住"}, ensure_ascii=False) for r in rows]
    return ("\n".join(lines) + "\n").encode()


_CONTENT_TYPE = {"ndjson": "application/x-ndjson", "csv": "text/csv"}


async def _post(svc: Any, tokens: Any, client_batch_id: str, fmt: str = "ndjson") -> Any:
    return await svc.client.post(
        "/v1/feeds/police/2026-09/batches",
        content=_body(fmt),
        params={"client_batch_id": client_batch_id},
        headers=dept_headers(tokens, "police") | {"Content-Type": _CONTENT_TYPE[fmt]},
    )


async def _count(svc: Any, model: Any, *where: Any) -> int:
    async with svc.ctx.db.transaction() as s:
        query = select(func.count()).select_from(model)
        if where:
            query = query.where(*where)
        return int((await s.execute(query)).scalar_one())


class _Stop:
    """Holds a job forever at one point (the moment its process 'dies'), once armed."""

    def __init__(self) -> None:
        self.armed = True
        self.reached = asyncio.Event()

    async def here(self) -> None:
        if self.armed:
            self.reached.set()
            await asyncio.Event().wait()


async def _die_mid_job(svc: Any, tokens: Any, stop: _Stop, fmt: str = "ndjson") -> dict[str, Any]:
    """Submit a batch, let its job reach ``stop``, then kill the job task; the batch as then stored."""
    r = await _post(svc, tokens, "R-1", fmt)
    assert r.status_code == 202, r.text
    accepted = r.json()
    await asyncio.wait_for(stop.reached.wait(), 20)
    task = svc.ctx.jobs.tasks[accepted["job_id"]]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stop.armed = False
    headers = dept_headers(tokens, "police")
    job = (await svc.client.get(f"/v1/jobs/{accepted['job_id']}", headers=headers)).json()
    assert job["status"] == "running"  # as a killed process leaves it
    batch = (await svc.client.get(f"/v1/feeds/batches/{accepted['id']}", headers=headers)).json()
    assert batch["status"] == "running"
    assert await _count(svc, Child) == 0
    return batch


async def _job_until(svc: Any, tokens: Any, job_id: str, done: Any, cap: float = 60) -> dict[str, Any]:
    """The job once ``done(job)``; polls (the sweep may first pass it through ``interrupted``)."""
    headers = dept_headers(tokens, "police")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cap
    while loop.time() < deadline:
        job = (await svc.client.get(f"/v1/jobs/{job_id}", headers=headers)).json()
        if done(job):
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"job not as awaited within {cap} s: {job}")


async def _applied_once(svc: Any, tokens: Any, batch_id: str, job_id: str, fmt: str = "ndjson") -> None:
    headers = dept_headers(tokens, "police")
    job = await _job_until(svc, tokens, job_id, lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    assert job["counts"]["rows_total"] == ROWS and job["counts"]["accepted"] == ROWS
    batch = (await svc.client.get(f"/v1/feeds/batches/{batch_id}", headers=headers)).json()
    assert (batch["status"], batch["job_id"], batch["error_code"]) == ("completed", job_id, None)
    assert (batch["rows_total"], batch["accepted"], batch["children_registered"]) == (ROWS, ROWS, ROWS)
    assert await _count(svc, FeedBatch) == 1
    assert await _count(svc, FeedRow, FeedRow.batch_id == batch_id) == ROWS
    async with svc.ctx.db.transaction() as s:
        blinds = (await s.execute(select(Child.id_blind))).scalars().all()
    assert len(blinds) == len(set(blinds)) == ROWS
    registered = await outbox_events(svc, "child.registered.v1")
    assert len(registered) == ROWS and len({e["subject"] for e in registered}) == ROWS
    assert Counter(e["subject"] for e in await outbox_events(svc, "feed.completed.v1")) == {batch_id: 1}
    assert not await asyncio.to_thread(batch_file(svc.settings, batch_id, fmt).exists)
    assert not await asyncio.to_thread((spool_dir(svc.settings) / f"batch-{batch_id}.lock").exists)


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
async def test_batch_killed_mid_staging_is_resumed_at_start_up_and_applied_once(
    start_service, tokens, monkeypatch, fmt
):
    stop = _Stop()
    real_insert = ingest.insert_rows
    calls = 0

    async def insert_then_die(session: Any, table: Any, rows: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # one chunk staged and committed, the process dies in the second
            await stop.here()
        await real_insert(session, table, rows)

    monkeypatch.setattr(ingest, "CHUNK", 5)
    monkeypatch.setattr(ingest, "insert_rows", insert_then_die)
    first = await start_service("registry", **JOBS)
    batch = await _die_mid_job(first, tokens, stop, fmt)
    assert await _count(first, FeedRow) == 5  # a part staged
    assert await asyncio.to_thread(batch_file(first.settings, batch["id"], fmt).exists)

    # Two more replicas come up together while the first lives on: once the job's heartbeat is stale,
    # the replicas' sweeps (the first's too) resume it once between them.
    again, replica = await asyncio.gather(
        start_service("registry", **JOBS), start_service("registry", **JOBS)
    )
    await _applied_once(again, tokens, batch["id"], batch["job_id"], fmt)
    # A resubmission of the finished batch: the batch, nothing applied again.
    r = await _post(again, tokens, "R-1", fmt)
    assert (r.status_code, r.json()["id"], r.json()["duplicate"]) == (200, batch["id"], True)
    await asyncio.sleep(0.2)
    await _applied_once(replica, tokens, batch["id"], batch["job_id"], fmt)


async def test_batch_killed_in_the_merge_with_its_file_gone_is_merged_from_its_staged_rows(
    start_service, tokens, monkeypatch
):
    stop = _Stop()
    real_resolve = ingest.merge.resolve_by_id

    async def resolve_then_die(session: Any, batch_id: str) -> None:
        await real_resolve(session, batch_id)
        await stop.here()  # inside the merge transaction: rolled back with the process

    monkeypatch.setattr(ingest.merge, "resolve_by_id", resolve_then_die)
    first = await start_service("registry", **JOBS)
    batch = await _die_mid_job(first, tokens, stop)
    assert await _count(first, FeedRow) == ROWS  # all staged, nothing merged
    await asyncio.to_thread(batch_file(first.settings, batch["id"], "ndjson").unlink)

    again = await start_service("registry", **JOBS)
    await _applied_once(again, tokens, batch["id"], batch["job_id"])


async def test_unfinished_batch_that_cannot_be_resumed_is_applied_by_its_resubmission(
    start_service, tokens, monkeypatch
):
    stop = _Stop()
    real_insert = ingest.insert_rows
    calls = 0

    async def insert_then_die(session: Any, table: Any, rows: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            await stop.here()
        await real_insert(session, table, rows)

    monkeypatch.setattr(ingest, "CHUNK", 5)
    monkeypatch.setattr(ingest, "insert_rows", insert_then_die)
    first = await start_service("registry", **JOBS)
    batch = await _die_mid_job(first, tokens, stop)
    # Part staged and the kept file gone (say, on another replica's disk): not resumable at start-up.
    await asyncio.to_thread(batch_file(first.settings, batch["id"], "ndjson").unlink)
    again = await start_service("registry", **JOBS)
    headers = dept_headers(tokens, "police")
    job = await _job_until(again, tokens, batch["job_id"], lambda j: j["error_code"] == "not_resumed")
    assert (job["status"], job["error_code"]) == ("interrupted", "not_resumed")
    stored = (await again.client.get(f"/v1/feeds/batches/{batch['id']}", headers=headers)).json()
    assert (stored["status"], stored["error_code"]) == ("interrupted", "feed_upload_missing")
    assert await _count(again, Child) == 0

    # The client retries with the same client batch id: the same batch, accepted and applied once.
    r = await _post(again, tokens, "R-1")
    assert r.status_code == 202, r.text
    assert (r.json()["id"], r.json()["duplicate"]) == (batch["id"], True)
    assert r.headers["Location"] == f"/v1/jobs/{r.json()['job_id']}"
    await _applied_once(again, tokens, batch["id"], r.json()["job_id"])


async def test_a_resubmission_to_another_replica_leaves_a_live_job_to_its_process(
    start_service, tokens, monkeypatch
):
    """The batch is being applied by a live replica (its job heartbeating): a repeat of it that reaches
    another replica answers 202 with the same job and starts nothing there; the batch is applied once."""
    from baoxue import jobs as jobs_module

    reached, release = asyncio.Event(), asyncio.Event()
    real_report = jobs_module.JobProgress.report

    async def report_then_wait(self: Any, *args: Any, **kwargs: Any) -> None:
        await real_report(self, *args, **kwargs)
        reached.set()
        await release.wait()  # outside any transaction: the job just takes long

    monkeypatch.setattr(jobs_module.JobProgress, "report", report_then_wait)
    first = await start_service("registry", **JOBS)
    replica = await start_service("registry", **JOBS)
    r = await _post(first, tokens, "R-1")
    assert r.status_code == 202, r.text
    accepted = r.json()
    await asyncio.wait_for(reached.wait(), 60)
    # Long enough for the job to have gone stale, had its heartbeat not been refreshed.
    beat = await _job_until(first, tokens, accepted["job_id"], lambda j: j["heartbeat_at"] is not None)

    def later(job: dict[str, Any]) -> bool:
        elapsed = dt.datetime.fromisoformat(job["heartbeat_at"]) - dt.datetime.fromisoformat(
            beat["heartbeat_at"]
        )
        return elapsed.total_seconds() > 2 * JOBS["job_stale_after_seconds"]

    await _job_until(first, tokens, accepted["job_id"], later)
    again = await _post(replica, tokens, "R-1")
    assert again.status_code == 202, again.text
    assert (again.json()["id"], again.json()["job_id"]) == (accepted["id"], accepted["job_id"])
    assert not replica.ctx.jobs.tasks
    job = (
        await replica.client.get(f"/v1/jobs/{accepted['job_id']}", headers=dept_headers(tokens, "police"))
    ).json()
    assert (job["status"], job["owner"]) == ("running", first.ctx.jobs.owner)
    release.set()
    await _applied_once(first, tokens, accepted["id"], accepted["job_id"])
    assert not replica.ctx.jobs.tasks
