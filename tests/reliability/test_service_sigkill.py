"""Each of the four services, as a real ``baoxue serve`` process, killed with SIGKILL again and again in
the middle of work and restarted: 0 lost and 0 doubled effects.

Per service: its own database (the run's PostgreSQL, or a SQLite file), a NATS server of the test's own
(``nats_server_factory``) and an event namespace of its own. While a driver pushes real work into it,
the process is killed at random moments (≥ 10 times; ``make chaos`` sets SERVICE_KILLS=30) and started
again. Then a Jepsen-style checker counts lost / duplicate / unexpected for

- acknowledged writes: every write a retrying client saw acknowledged exists exactly once in the
  service's database (registry: feed batches by client batch id → one child per ID number; enrollment:
  student registrations with an Idempotency-Key; casework: visits with a client id and an
  Idempotency-Key);
- events consumed: every event published into the service's upstream stream has its effect exactly once
  (enrollment: ChildRegistered → its child snapshot; casework: StudentRegistered → its student record;
  notify: CaseConfirmed → its report deadline);
- events published: every event in the service's outbox reaches a downstream consumer exactly once (a
  probe consumer in this test, through the library's consumer runner, records each event with no unique
  key), and no business fact is published twice under two event ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.catalog import load_service
from baoxue.contracts import all_contracts
from baoxue.contracts.casework import CaseConfirmed
from baoxue.contracts.enrollment import StudentRegistered
from baoxue.contracts.registry import ChildRegistered
from baoxue.db import Database, sync_url
from baoxue.events.bus import EventBus
from baoxue.events.consumer import ConsumerRunner, ReceivedEvent, Subscription
from baoxue.events.envelope import Envelope, EventData
from baoxue.events.tables import define_event_tables
from baoxue.infra import free_port
from baoxue.migrations import upgrade
from baoxue.pii.citizen_id import check_character
from baoxue.testing.attacks import ROLE_ORGS
from baoxue.testing.plugin import AUDIENCE, ISSUER

KILLS = int(os.environ.get("SERVICE_KILLS", "10"))
SCHOOL, TOWN = "37040600101001", "370406001"
ROOT = Path(__file__).resolve().parents[2]
FIGURES: dict[str, dict[str, Any]] = {}


def _today() -> dt.date:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()  # Asia/Shanghai


def _person(n: int) -> tuple[str, dt.date]:
    """A valid ID number of Shanting (370406), unique per n, and its birth date."""
    birth = dt.date(2014, 1, 1) + dt.timedelta(days=n // 1000)
    first17 = f"370406{birth:%Y%m%d}{n % 1000:03d}"
    return first17 + check_character(first17), birth


def history(expected: set[str], applied: list[str]) -> dict[str, int]:
    """lost (expected, never applied), duplicates (applied more than once), unexpected (never asked for)."""
    seen = Counter(applied)
    return {
        "expected": len(expected),
        "applied": len(applied),
        "lost": len(expected - set(seen)),
        "duplicates": sum(c - 1 for c in seen.values() if c > 1),
        "unexpected": len(set(seen) - expected),
    }


# --------------------------------------------------------------------------------------------------
# The victim: one service as a real process


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "baoxue", "serve", self.name],
            env=self.env,
            cwd=ROOT,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.starts += 1

    def log_tail(self) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(line[:300] for line in lines[-8:])

    async def ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.proc is not None and self.proc.poll() is None, (
                    f"{self.name} exited:\n{self.log_tail()}"
                )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.base_url + "/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after start {self.starts}:\n{self.log_tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------------------------------
# The probe downstream: records every event of the victim's stream (no unique key: a second
# application would be a second row)


def _probe_metadata() -> tuple[MetaData, Any, Table]:
    metadata = MetaData()
    tables = define_event_tables(metadata)
    effects = Table(
        "probe_effects",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("event_id", String(36)),
        Column("event_type", String(200)),
        Column("fact", String(300)),  # event type, subject, sequence: one business fact
    )
    return metadata, tables, effects


@dataclass
class Harness:
    name: str
    victim: ServiceProcess
    victim_url: str
    bus: EventBus  # for publishing into the victim's upstream streams
    tokens: Any
    rng: random.Random
    acked: set[str] = field(default_factory=set)
    attempts: Counter[str] = field(default_factory=Counter)
    published_in: set[str] = field(default_factory=set)

    async def request(
        self, method: str, path: str, key: str, *, ok: tuple[int, ...] = (200, 201, 202), **kwargs: Any
    ) -> httpx.Response:
        """A client that retries (same request, same key) until the service acknowledges it."""
        async with httpx.AsyncClient(base_url=self.victim.base_url, timeout=10) as client:
            while True:
                self.attempts[key] += 1
                try:
                    r = await client.request(method, path, **kwargs)
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
                    continue
                if r.status_code in ok:
                    self.acked.add(key)
                    return r
                assert r.status_code in (500, 502, 503, 504), (path, r.status_code, r.text[:300])
                await asyncio.sleep(0.1)

    async def publish(self, data: EventData, *, subject: str, sequence: int = 1) -> None:
        envelope = Envelope.wrap(data, subject=subject, sequence=sequence, trace_id=None)
        await self.bus.js.publish(
            f"{self.bus.namespace}.{data.relative_subject()}",
            envelope.model_dump_json().encode(),
            headers={"Nats-Msg-Id": envelope.id},
        )
        self.published_in.add(subject)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        url = sync_url(self.victim_url)
        engine = create_engine(url, connect_args={"timeout": 60} if url.startswith("sqlite") else {})
        try:
            with engine.connect() as c:
                return [tuple(r) for r in c.execute(text(sql)).all()]
        finally:
            engine.dispose()


# --------------------------------------------------------------------------------------------------
# The work of each service, and what must hold afterwards


_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"


def _feed_rows(start: int, n: int) -> bytes:
    lines = []
    for i in range(start, start + n):
        idn, birth = _person(i)
        lines.append(
            json.dumps(
                {
                    "姓名": "张" + _GIVEN[i % len(_GIVEN)] + _GIVEN[i // len(_GIVEN) % len(_GIVEN)],
                    "身份证号": idn,
                    "性别": "男" if int(idn[16]) % 2 else "女",
                    "出生日期": birth.isoformat(),
                    "户籍地址": "山亭区店子镇前庄村12号",
                    "类别": "常住",
                },
                ensure_ascii=False,
            )
        )
    return ("\n".join(lines) + "\n").encode()


async def work_registry(h: Harness, stop: asyncio.Event) -> dict[str, Any]:
    """Police feed batches (40 rows each, a client batch id each) until told to stop."""
    headers = {
        **h.tokens.headers("dept_police", ROLE_ORGS["dept_police"]),
        "Content-Type": "application/x-ndjson",
    }
    batches = 0
    while not stop.is_set():
        key = f"kill-{batches:04d}"
        await h.request(
            "POST",
            f"/v1/feeds/police/2026-09/batches?client_batch_id={key}",
            key,
            content=_feed_rows(batches * 40, 40),
            headers=headers,
        )
        batches += 1
    return {"batches": batches, "rows": batches * 40}


async def check_registry(h: Harness, work: dict[str, Any]) -> dict[str, Any]:
    statuses = dict(h.query("SELECT status, count(*) FROM feed_batches GROUP BY status"))
    # Every acknowledged batch applied: its 40 ID numbers are 40 children, once each.
    children = [r[0] for r in h.query("SELECT id_blind FROM children")]
    expected = work["rows"]
    acked_batches = {r[0] for r in h.query("SELECT client_batch_id FROM feed_batches")}
    return {
        "batches": history(h.acked, list(acked_batches)),
        "batch_statuses": statuses,
        "children": {
            "expected": expected,
            "applied": len(children),
            "lost": max(0, expected - len(set(children))),
            "duplicates": len(children) - len(set(children)),
            "unexpected": max(0, len(set(children)) - expected),
        },
    }


async def work_enrollment(h: Harness, stop: asyncio.Event) -> dict[str, Any]:
    """Student registrations (Idempotency-Key), and ChildRegistered events the service consumes."""
    headers = h.tokens.headers("school", SCHOOL)
    n = 0
    while not stop.is_set():
        idn, _ = _person(n)
        key = f"stu-{n}"
        await asyncio.gather(
            h.request(
                "POST",
                "/v1/students",
                key,
                json={"student_number": "G" + idn, "id_number": idn, "school_code": SCHOOL, "grade": 4},
                headers={**headers, "Idempotency-Key": key},
            ),
            h.publish(
                ChildRegistered(child_id=str(uuid.uuid4()), id_blind_index=f"probe{n}", hukou_town=TOWN),
                subject=f"child-{n}",
            ),
        )
        n += 1
    return {"students": n}


async def check_enrollment(h: Harness, work: dict[str, Any]) -> dict[str, Any]:
    numbers = [r[0] for r in h.query("SELECT student_number_index FROM student_records")]
    snapshots = [r[0] for r in h.query("SELECT id_blind_index FROM children")]
    expected_children = {f"probe{i}" for i in range(work["students"])}
    return {
        "students": {
            "expected": len(h.acked),
            "applied": len(numbers),
            "lost": max(0, len(h.acked) - len(set(numbers))),
            "duplicates": len(numbers) - len(set(numbers)),
            "unexpected": max(0, len(set(numbers)) - len(h.acked)),
        },
        "consumed ChildRegistered": history(expected_children, snapshots),
    }


async def work_casework(h: Harness, stop: asyncio.Event) -> dict[str, Any]:
    """Visits from a mobile client that retries (client id + Idempotency-Key), and StudentRegistered
    events the service consumes into its student read model."""
    headers = h.tokens.headers("teacher", SCHOOL)
    n = 0
    while not stop.is_set():
        visit = str(uuid.UUID(int=h.rng.getrandbits(128)))
        await asyncio.gather(
            h.request(
                "POST",
                "/v1/visits",
                visit,
                json={
                    "id": visit,
                    "student_id": f"stu-kill-{n}",
                    "school_code": SCHOOL,
                    "visited_on": _today().isoformat(),
                    "form": "home_visit",
                    "participants": ["班主任"],
                },
                headers={**headers, "Idempotency-Key": visit},
            ),
            h.publish(
                StudentRegistered(student_id=f"stu-read-{n}", school_code=SCHOOL, status="enrolled", grade=4),
                subject=f"stu-read-{n}",
            ),
        )
        n += 1
    return {"visits": n}


async def check_casework(h: Harness, work: dict[str, Any]) -> dict[str, Any]:
    visits = [r[0] for r in h.query("SELECT id FROM visits")]
    students = [r[0] for r in h.query("SELECT student_id FROM student_records")]
    return {
        "visits": history(h.acked, visits),
        "consumed StudentRegistered": history({f"stu-read-{i}" for i in range(work["visits"])}, students),
    }


async def work_notify(h: Harness, stop: asyncio.Event) -> dict[str, Any]:
    """CaseConfirmed events (each opens a report deadline and starts the escalation ladder)."""
    n = 0
    due = _today() + dt.timedelta(days=10)
    while not stop.is_set():
        case = str(uuid.UUID(int=h.rng.getrandbits(128)))
        await h.publish(
            CaseConfirmed(
                case_id=case,
                child_id=str(uuid.uuid4()),
                school_code=SCHOOL,
                hukou_town=TOWN,
                state="confirmed",
                reason="learning_weariness",
                report_due=due,
            ),
            subject=case,
        )
        n += 1
        await asyncio.sleep(0.01)
    return {"cases": n}


async def check_notify(h: Harness, work: dict[str, Any]) -> dict[str, Any]:
    deadlines = [r[0] for r in h.query("SELECT case_id FROM deadlines WHERE kind = 'case_report'")]
    return {"consumed CaseConfirmed (report deadlines)": history(h.published_in, deadlines)}


Work = Callable[[Harness, asyncio.Event], Awaitable[dict[str, Any]]]
Check = Callable[[Harness, dict[str, Any]], Awaitable[dict[str, Any]]]
SCENARIOS: dict[str, tuple[Work, Check, tuple[str, ...]]] = {
    "registry": (work_registry, check_registry, ()),
    "enrollment": (work_enrollment, check_enrollment, ("registry",)),
    "casework": (work_casework, check_casework, ("enrollment",)),
    "notify": (work_notify, check_notify, ("casework",)),
}


@pytest_asyncio.fixture
async def own_nats(nats_server_factory) -> AsyncIterator[str]:
    server = nats_server_factory()
    yield server.url


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "registry",
        "enrollment",
        "casework",
        "notify",
    ],
)
async def test_service_killed_mid_work_loses_and_doubles_nothing(
    name, baoxue_infra, own_nats, tokens, jwt_key_file, tmp_path
):
    work, check, _upstream = SCENARIOS[name]
    namespace = f"k{baoxue_infra.run_id}{name[:3]}"
    spec = load_service(name)
    url = baoxue_infra.database_url(f"kill_{name}")
    upgrade(spec.migrations_dir, url)
    probe_url = baoxue_infra.database_url(f"killprobe_{name}")
    metadata, probe_tables, effects = _probe_metadata()
    engine = create_engine(sync_url(probe_url))
    metadata.drop_all(engine)
    metadata.create_all(engine)
    engine.dispose()

    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            f"{name.upper()}_PORT": str(port),
            f"{name.upper()}_DATABASE_URL": url,
            "BAOXUE_NATS_URL": own_nats,
            "BAOXUE_EVENT_NAMESPACE": namespace,
            "BAOXUE_VAR_DIR": str(tmp_path / "var"),
            "BAOXUE_JWT_PUBLIC_KEY_FILE": str(jwt_key_file),
            "BAOXUE_JWT_ISSUER": ISSUER,
            "BAOXUE_JWT_AUDIENCE": AUDIENCE,
            "BAOXUE_ACK_WAIT_SECONDS": "2",
            "BAOXUE_ENVIRONMENT": "test",
        }
    )
    victim = ServiceProcess(name, env, tmp_path / f"{name}.log", port)
    bus = EventBus(own_nats, namespace=namespace, client_name="kill-driver")
    await bus.connect()
    await bus.ensure_streams()
    probe_db = Database(probe_url)

    async def record(session: AsyncSession, event: ReceivedEvent[Any]) -> None:
        e = event.envelope
        await session.execute(
            insert(effects).values(
                event_id=e.id, event_type=e.type, fact=f"{e.type}|{e.subject}|{e.sequence}"
            )
        )

    contracts = [c for c in all_contracts() if c.service == name]
    probe = ConsumerRunner(
        f"probe-{name}",
        probe_db,
        probe_tables,
        bus,
        [Subscription(name, dict.fromkeys(contracts, record))],
        ack_wait=2.0,
        max_deliver=1000,
    )
    probe_task = asyncio.create_task(probe.run())
    h = Harness(name, victim, url, bus, tokens, random.Random(f"kill-{name}"))
    stop = asyncio.Event()
    kills, ready_times = 0, []
    started = time.monotonic()
    try:
        victim.start()
        await victim.ready()
        driver = asyncio.create_task(work(h, stop))
        for _ in range(KILLS):
            await asyncio.sleep(h.rng.uniform(0.3, 1.5))  # work in flight when the kill lands
            assert not driver.done(), driver.exception()
            victim.kill()
            kills += 1
            await asyncio.sleep(h.rng.uniform(0.0, 0.3))
            t = time.monotonic()
            victim.start()
            await victim.ready()
            ready_times.append(time.monotonic() - t)
        await asyncio.sleep(0.5)
        stop.set()
        done = await asyncio.wait_for(driver, 120)
        # The survivor finishes: outbox drained, upstream events applied, then one ack_wait more.
        outbox = spec.tables.events.outbox
        victim_db = Database(url)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                async with victim_db.transaction() as s:
                    left = (
                        await s.execute(select(outbox.c.event_id).where(outbox.c.published_at.is_(None)))
                    ).all()
                if not left:
                    break
                await asyncio.sleep(0.3)
            await _settle(h, name, victim_db, spec)
            await asyncio.sleep(4)  # ack_wait 2 s: anything un-acked is redelivered by now
            async with victim_db.transaction() as s:
                published = [r[0] for r in (await s.execute(select(outbox.c.event_id))).all()]
                dead = (await s.execute(select(spec.tables.events.dead_letter.c.event_id))).all()
        finally:
            await victim_db.dispose()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with probe_db.transaction() as s:
                got = (await s.execute(select(effects.c.event_id, effects.c.fact))).all()
            if set(published) <= {r[0] for r in got}:
                break
            await asyncio.sleep(0.3)
        await asyncio.sleep(3)
        async with probe_db.transaction() as s:
            got = (await s.execute(select(effects.c.event_id, effects.c.fact))).all()
        figures = await check(h, done)
    finally:
        stop.set()
        victim.stop()
        probe_task.cancel()
        with contextlib.suppress(BaseException):
            await probe_task
        with contextlib.suppress(Exception):
            await bus.delete_streams()
        await bus.close()
        await probe_db.dispose()

    facts = Counter(r[1] for r in got)
    figures["published events → downstream"] = history(set(published), [r[0] for r in got])
    figures["published events → downstream"]["facts published twice"] = sum(
        c - 1 for c in facts.values() if c > 1
    )
    figures["dead letters"] = len(dead)
    figures.update(
        kills=kills,
        work=done,
        retried_requests=sum(c - 1 for c in h.attempts.values()),
        restart_to_ready_median_s=round(sorted(ready_times)[len(ready_times) // 2], 2),
        seconds=round(time.monotonic() - started, 1),
    )
    FIGURES[name] = figures
    print(f"\n{name} SIGKILL: {json.dumps(figures, ensure_ascii=False, default=str)}")

    assert kills >= KILLS
    assert published, "the service published nothing: the kills were not in the middle of work"
    assert figures["dead letters"] == 0
    for what, counts in figures.items():
        if isinstance(counts, dict) and "lost" in counts:
            assert counts["expected"] > 0, (what, counts)
            assert counts["lost"] == counts["duplicates"] == counts["unexpected"] == 0, (what, counts)
    assert figures["published events → downstream"]["facts published twice"] == 0


async def _settle(h: Harness, name: str, db: Database, spec: Any, stall: float = 45.0) -> None:
    """Wait until the service has applied every event published into its upstream stream (inbox) and,
    for registry, every feed batch has left the queue.

    A loaded machine may leave a backlog of thousands of events when the driver stops: the wait goes on
    while the count moves and gives up only after ``stall`` seconds without progress (or 15 minutes), so
    that what the check then calls lost is lost, not late."""
    inbox = spec.tables.events.inbox
    last, moved, cap = -1, time.monotonic(), time.monotonic() + 900
    while time.monotonic() < cap:
        async with db.transaction() as s:
            applied = (await s.execute(select(func.count()).select_from(inbox))).scalar_one()
            if name == "registry":
                busy = (
                    await s.execute(
                        text("SELECT count(*) FROM feed_batches WHERE status IN ('queued','running')")
                    )
                ).scalar_one()
            else:
                busy = 0
        if applied >= len(h.published_in) and not busy:
            return
        if applied + busy != last:
            last, moved = applied + busy, time.monotonic()
        elif time.monotonic() - moved > stall:
            return
        await asyncio.sleep(0.3)
