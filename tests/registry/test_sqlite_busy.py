"""On SQLite (the embedded default) a feed job waits for another writer instead of failing.

SQLite has one writer per database. A request that finds the write lock held waits the busy timeout (10 s)
and then answers 503 ("nothing was saved, retry"); a feed job must not give up like that: four departments
delivering 60,000-row feeds at the same moment hold the lock in turn for longer than that, and a job that
failed would leave its clerk a failed batch to submit again. Here a second connection holds the write lock
for several busy timeouts (shortened for the test) while a job runs; the job waits and succeeds.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import baoxue.db
from baoxue.catalog import load_service
from baoxue.migrations import upgrade
from baoxue.testing.sqlite_lock import hold_write_lock
from tests.registry.conftest import csv_body, dept_headers, wait_job
from tests.registry.people import distinct_rows

BUSY_TIMEOUT_MS = 200
HOLD_SECONDS = 1.5
ROWS = 300


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(baoxue.db, "SQLITE_BUSY_TIMEOUT_MS", BUSY_TIMEOUT_MS)
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade(load_service("registry").migrations_dir, url)
    return url


def _job_statuses(statuses: list[str]) -> Callable[[sqlite3.Connection], None]:
    """Note the jobs' statuses as the write lock is taken (what the job had done when it was stopped)."""

    def note(conn: sqlite3.Connection) -> None:
        statuses.extend(row[0] for row in conn.execute("SELECT status FROM jobs"))

    return note


async def test_a_feed_job_waits_out_another_writer_holding_the_lock(
    start_service, tokens, sqlite_url
) -> None:
    svc = await start_service("registry", database_url=sqlite_url)
    headers = dept_headers(tokens, "police")
    response = await svc.client.post(
        "/v1/feeds/police/2026-09/batches",
        content=csv_body(*distinct_rows(ROWS, "李")),
        params={"mode": "commit"},
        headers=headers | {"Content-Type": "text/csv"},
    )
    assert response.status_code == 202, response.text
    statuses: list[str] = []
    holder = hold_write_lock(
        sqlite_url.removeprefix("sqlite:///"), HOLD_SECONDS, while_held=_job_statuses(statuses)
    )
    await asyncio.to_thread(holder.taken.wait, 10)
    assert statuses and statuses[0] != "succeeded", statuses  # the job still had writes to make

    job = await wait_job(svc.client, headers, response.json()["job_id"], timeout=60)
    await asyncio.to_thread(holder.join_checked)

    assert job["status"] == "succeeded", job
    batch = (await svc.client.get(f"/v1/feeds/batches/{response.json()['id']}", headers=headers)).json()
    assert (batch["status"], batch["accepted"]) == ("completed", ROWS)


async def test_a_request_still_answers_503_after_the_busy_timeout(start_service, tokens, sqlite_url) -> None:
    svc = await start_service("registry", database_url=sqlite_url)
    holder = hold_write_lock(sqlite_url.removeprefix("sqlite:///"), HOLD_SECONDS)
    await asyncio.to_thread(holder.taken.wait, 10)
    try:
        response = await svc.client.post(
            "/v1/feeds/police/2026-09/batches",
            content=csv_body(*distinct_rows(1, "李")),
            params={"mode": "commit"},
            headers=dept_headers(tokens, "police") | {"Content-Type": "text/csv"},
        )
    finally:
        await asyncio.to_thread(holder.join_checked)
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
