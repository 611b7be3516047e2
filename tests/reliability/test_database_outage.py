"""The database away for a while: requests get 503 problem details, nothing is half-written, and the
service recovers by itself once the database is back.

PostgreSQL (TEST_DATABASE_URL): the database refuses new connections and every backend of it is terminated
(``pg_terminate_backend``), then connections are allowed again. Embedded SQLite: another process holds
an exclusive lock on the file for longer than the service's busy timeout, then lets it go.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from baoxue.db import sync_url
from baoxue.testing.attacks import is_problem

SCHOOL = "37040600101001"


def _case(n: int) -> dict:
    return {
        "school_code": SCHOOL,
        "hukou_town": "370406001",
        "student_id": f"stu-outage-{n}",
        "reason": "learning_weariness",
    }


@contextlib.contextmanager
def database_away(url: str) -> Iterator[None]:
    name = make_url(url).database
    admin = create_engine(make_url(sync_url(url)).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
        yield
    finally:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


async def _count_cases(url: str) -> int:
    def count() -> int:
        engine = create_engine(sync_url(url))
        try:
            with engine.connect() as c:
                return int(c.execute(text("SELECT count(*) FROM cases")).scalar_one())
        finally:
            engine.dispose()

    return await asyncio.to_thread(count)


@pytest.mark.slow
async def test_requests_get_503_nothing_half_written_and_the_service_recovers(start_service, tokens):
    svc = await start_service("casework")
    headers = tokens.headers("school", SCHOOL)
    url = svc.settings.database_url
    if make_url(url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL case; the embedded case is the SQLite lock test below")
    ok = await svc.client.post("/v1/cases", json=_case(0), headers=headers)
    assert ok.status_code == 201, ok.text
    before = await _count_cases(url)

    # The app's catch-all handler answers and then re-raises for the server's log; a real server (and
    # this client) sends the answer rather than the exception.
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=svc.app, raise_app_exceptions=False), base_url="http://casework"
    )
    outage_statuses = []
    with database_away(url):
        for n in range(1, 3):
            r = await client.post("/v1/cases", json=_case(n), headers=headers)
            outage_statuses.append(r.status_code)
            assert r.status_code == 503 and is_problem(r), (r.status_code, r.text[:300])
            assert r.json()["code"] == "service_unavailable" and r.headers.get("retry-after")
    assert await _count_cases(url) == before, "a refused request must leave nothing behind"

    recovered_after = None
    started = time.monotonic()
    while time.monotonic() - started < 30:
        r = await client.post("/v1/cases", json=_case(99), headers=headers)
        if r.status_code == 201:
            recovered_after = time.monotonic() - started
            break
        assert r.status_code == 503, r.text[:300]
        await asyncio.sleep(0.5)
    assert recovered_after is not None, "the service did not recover by itself"
    assert await _count_cases(url) == before + 1
    listed = await svc.client.get("/v1/cases", headers=headers)
    assert listed.status_code == 200
    print(
        f"database outage: statuses during outage {outage_statuses}; recovered after {recovered_after:.1f}s"
    )


LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
conn.execute("ROLLBACK")
"""


@contextlib.asynccontextmanager
async def sqlite_locked(path: str) -> AsyncIterator[None]:
    """Another process holds an exclusive lock on the database file (longer than the busy timeout).

    The wait for the lock runs off the event loop: the service's background tasks (the sealer, the
    relay) may be inside a write transaction just then, and they can only commit while the loop runs.
    """
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert (await asyncio.to_thread(proc.stdout.readline)).strip() == "locked"
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)


@pytest.mark.slow
async def test_sqlite_locked_by_another_process_503_nothing_half_written_and_recovers(start_service, tokens):
    """Embedded: the SQLite file exclusively locked by another process for longer than the service's busy
    timeout (10 s): writes answer 503 problem details, nothing is half-written, and once the lock goes
    the service writes again without a restart."""
    svc = await start_service("casework")
    headers = tokens.headers("school", SCHOOL)
    url = svc.settings.database_url
    if make_url(url).get_backend_name() != "sqlite":
        pytest.skip("the embedded (SQLite) case; PostgreSQL is covered above")
    path = make_url(sync_url(url)).database
    assert path
    await svc.wait_events_ready(timeout=20)
    ok = await svc.client.post("/v1/cases", json=_case(0), headers=headers)
    assert ok.status_code == 201, ok.text
    before = await _count_cases(url)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=svc.app, raise_app_exceptions=False), base_url="http://casework"
    )
    statuses = []
    started = time.monotonic()
    async with sqlite_locked(path):
        lock_taken = time.monotonic() - started
        for n in range(1, 3):
            r = await client.post("/v1/cases", json=_case(n), headers=headers)
            statuses.append(r.status_code)
            assert r.status_code == 503 and is_problem(r), (r.status_code, r.text[:300])
            assert r.json()["code"] == "service_unavailable" and r.headers.get("retry-after")
    assert await _count_cases(url) == before, "a refused request must leave nothing behind"
    recovered_after = None
    started = time.monotonic()
    while time.monotonic() - started < 30:
        r = await client.post("/v1/cases", json=_case(99), headers=headers)
        if r.status_code == 201:
            recovered_after = time.monotonic() - started
            break
        assert r.status_code == 503, r.text[:300]
        await asyncio.sleep(0.5)
    assert recovered_after is not None, "the service did not recover by itself"
    assert await _count_cases(url) == before + 1
    print(
        f"sqlite locked: lock taken after {lock_taken:.1f}s; statuses {statuses}; "
        f"recovered after {recovered_after:.1f}s"
    )
