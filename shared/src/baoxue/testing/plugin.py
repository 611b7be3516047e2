"""The pytest plugin every service's tests share: infrastructure, running services, tokens.

Fixtures:
- ``baoxue_infra`` (session): the run's database server / SQLite folder and NATS URL.
- ``event_namespace``: a NATS namespace (streams, subjects) of this test's own.
- ``start_service``: ``await start_service("registry")`` runs a service's real app (lifespan, relay,
  consumers) against the run's database and NATS, returning a :class:`RunningService` with an httpx
  client. Tables are emptied and streams deleted after the test.
- ``tokens``: mint development JWTs — ``tokens.headers("school", "37040610001001")``.
- ``event_publisher``: publish contract events onto a stream, to test a consumer on its own.
- ``nats_server_factory``: spawn a NATS server of the test's own (for tests that stop or kill it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.exc import OperationalError

from baoxue.app import create_app
from baoxue.auth.principal import Principal
from baoxue.auth.tokens import ensure_dev_keypair, mint_token
from baoxue.catalog import load_service
from baoxue.db import sync_url
from baoxue.events.envelope import Envelope, EventData
from baoxue.infra import NatsServerProcess
from baoxue.service import ServiceContext, ServiceSpec
from baoxue.settings import ServiceSettings
from baoxue.testing.infrastructure import TestInfrastructure, provide_infrastructure

ISSUER = "https://idp.test.baoxue.local"
AUDIENCE = "baoxue"
_namespace_counter = itertools.count(1)


@pytest.fixture(scope="session")
def baoxue_infra() -> Iterator[TestInfrastructure]:
    infra = provide_infrastructure(Path(tempfile.mkdtemp(prefix="baoxue-test-")))
    try:
        yield infra
    finally:
        infra.close()


@pytest.fixture(scope="session")
def jwt_key_file(baoxue_infra: TestInfrastructure) -> Path:
    return ensure_dev_keypair(baoxue_infra.tmp / "jwt-key.pem")


@dataclass
class TokenMinter:
    key_file: Path
    issuer: str = ISSUER
    audience: str = AUDIENCE

    def mint(self, role: str | list[str], org: str, *, sub: str | None = None, **kwargs: Any) -> str:
        roles = [role] if isinstance(role, str) else role
        return mint_token(
            self.key_file,
            subject=sub or f"test-{'-'.join(roles)}-{org}",
            roles=roles,
            org=org,
            issuer=kwargs.pop("issuer", self.issuer),
            audience=kwargs.pop("audience", self.audience),
            ttl=kwargs.pop("ttl", dt.timedelta(hours=1)),
            extra=kwargs or None,
        )

    def headers(
        self, role: str | list[str], org: str, *, purpose: str | None = None, **kwargs: Any
    ) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.mint(role, org, **kwargs)}"}
        if purpose:
            h["X-Access-Purpose"] = purpose
        return h


@pytest.fixture
def tokens(jwt_key_file: Path) -> TokenMinter:
    return TokenMinter(jwt_key_file)


@pytest.fixture
def event_namespace(baoxue_infra: TestInfrastructure) -> str:
    return f"t{baoxue_infra.run_id}n{next(_namespace_counter)}"


@dataclass
class RunningService:
    """A service app running in this test's event loop, with an httpx client bound to it."""

    spec: ServiceSpec
    settings: ServiceSettings
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def ctx(self) -> ServiceContext:
        return self.app.state.ctx  # type: ignore[no-any-return]

    async def wait_events_ready(self, timeout: float = 10.0) -> None:
        """Wait until NATS is connected and the relay (and consumers, if any) are running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ctx = self.ctx
            has_subs = bool(self.spec.subscriptions(ctx))
            if ctx.bus.is_connected and ctx.relay is not None and (ctx.consumers is not None or not has_subs):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.spec.name}: events not ready")

    async def handled(self, *event_ids: str) -> bool:
        """Whether this service's consumers have handled every one of these events: applied it, or
        skipped it as stale or a duplicate (either way it is in the inbox)."""
        from sqlalchemy import select

        inbox = self.spec.tables.events.inbox
        async with self.ctx.db.transaction() as s:
            found = await s.execute(select(inbox.c.event_id).where(inbox.c.event_id.in_(event_ids)))
            return set(found.scalars()) == set(event_ids)

    def principal(self, role: str, org: str) -> Principal:
        """A caller of this service with ``role`` at ``org``, as its token would make it (the role's
        permissions, the organisation's jurisdiction): for tests that call a service function directly."""
        roles = frozenset({role})
        return Principal(
            subject=f"test-{role}",
            roles=roles,
            org=org,
            scope=self.ctx.directory.jurisdiction_of(org),
            permissions=self.spec.policy.permissions_of(roles),
        )

    async def until_done_or_waiting(self, task: asyncio.Future[Any], timeout: float = 15.0) -> None:
        """Return when ``task`` has finished or a session of this service's database waits for a lock
        (PostgreSQL): the moment a test holding a transaction open lets it go on, to show that ``task``
        waits for it rather than passing it. Fails the test when neither happens within ``timeout``."""
        assert self.ctx.db.dialect == "postgresql", "lock waits are PostgreSQL's (SQLite has one writer)"
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        deadline = time.monotonic() + timeout
        while not task.done():
            async with self.ctx.db.transaction() as s:
                if (await s.execute(waiting)).scalar_one() > 0:
                    return
            assert time.monotonic() < deadline, f"neither finished nor waited for a lock within {timeout} s"
            await asyncio.sleep(0.02)

    async def drain_outbox(self, timeout: float = 10.0) -> None:
        """Wait until every outbox row has been published."""
        from sqlalchemy import func, select

        table = self.spec.tables.events.outbox
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self.ctx.db.transaction() as s:
                left = (
                    await s.execute(select(func.count()).where(table.c.published_at.is_(None)))
                ).scalar_one()
            if left == 0:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.spec.name}: outbox not drained")


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Poll ``check`` until it returns True; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def _sqlite_locked(exc: OperationalError) -> bool:
    return "database is locked" in str(exc.orig) or "database table is locked" in str(exc.orig)


def empty_tables(
    url: str, metadata: MetaData, *, busy_timeout: float = 15.0, attempts: int = 4, pause: float = 0.5
) -> None:
    """Remove every row of a service's tables (between tests).

    SQLite: the stopped service's last connections may still be closing, and SQLite answers "database
    is locked" at once in some cases without waiting out its busy timeout (a WAL snapshot or recovery in
    progress), so the cleanup waits up to ``busy_timeout`` per try and tries ``attempts`` times, with a
    growing pause between tries. Any other error, or a lock that outlasts every try, is raised. Called
    from async code, run it in a thread (``asyncio.to_thread``) so the holder of the lock can finish.
    """
    url = sync_url(url)
    sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"timeout": busy_timeout} if sqlite else {})
    names = [t.name for t in reversed(metadata.sorted_tables)]
    try:
        for attempt in range(1, attempts + 1):
            try:
                with engine.begin() as conn:
                    if engine.dialect.name == "postgresql":
                        conn.execute(
                            text(
                                "TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"
                            )
                        )
                    else:
                        for n in names:
                            conn.execute(text(f'DELETE FROM "{n}"'))  # noqa: S608
                return
            except OperationalError as exc:
                if not (sqlite and _sqlite_locked(exc)) or attempt == attempts:
                    raise
                time.sleep(pause * attempt)
    finally:
        engine.dispose()


async def empty_tables_off_loop(url: str, metadata: MetaData, **kwargs: Any) -> None:
    """:func:`empty_tables` in a thread, for async teardowns.

    A service task that outlived the shutdown's wait may still hold a SQLite write transaction, and it
    can only finish (and let go of the lock) while the event loop runs: emptying on the loop itself
    blocked it until every try had timed out.
    """
    await asyncio.to_thread(lambda: empty_tables(url, metadata, **kwargs))


@pytest_asyncio.fixture
async def start_service(
    baoxue_infra: TestInfrastructure, event_namespace: str, jwt_key_file: Path
) -> AsyncIterator[Callable[..., Awaitable[RunningService]]]:
    started: list[tuple[RunningService, LifespanManager, str]] = []

    async def start(name: str, **overrides: Any) -> RunningService:
        spec = load_service(name)
        url = baoxue_infra.migrated_database_url(name, spec.migrations_dir)
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": url,
            "nats_url": baoxue_infra.nats_url,
            "event_namespace": event_namespace,
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            "jwt_public_key_file": str(jwt_key_file),
            "var_dir": baoxue_infra.tmp / event_namespace,
        }
        values.update(overrides)
        settings = spec.settings_cls(**values)
        app = create_app(spec, settings)
        manager = LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
        await manager.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url=f"http://{name}")
        running = RunningService(spec=spec, settings=settings, app=app, client=client)
        started.append((running, manager, url))
        return running

    try:
        yield start
    finally:
        namespace_bus = None
        for running, manager, url in reversed(started):
            await running.client.aclose()
            if namespace_bus is None and running.ctx.bus.is_connected:
                namespace_bus = running.ctx.bus
                await namespace_bus.delete_streams()
            await manager.__aexit__(None, None, None)
            await empty_tables_off_loop(url, running.spec.metadata)


@dataclass
class EventPublisher:
    """Publishes contract events straight onto a service's stream of the test's namespace.

    For testing a consumer without running the publishing service: the envelope is exactly what the
    publisher's outbox relay would send.
    """

    bus: Any

    async def publish(
        self,
        data: EventData,
        *,
        subject: str,
        sequence: int = 1,
        event_id: str | None = None,
        time: dt.datetime | None = None,
    ) -> Envelope:
        """``time``: the envelope's time (default now), for an event that happened on another day."""
        envelope = Envelope.wrap(data, subject=subject, sequence=sequence, trace_id=None)
        if event_id:
            envelope.id = event_id
        if time is not None:
            envelope.time = time
        await self.bus.js.publish(
            f"{self.bus.namespace}.{data.relative_subject()}",
            envelope.model_dump_json().encode(),
            headers={"Nats-Msg-Id": envelope.id},
        )
        return envelope


@pytest_asyncio.fixture
async def event_publisher(
    baoxue_infra: TestInfrastructure, event_namespace: str
) -> AsyncIterator[EventPublisher]:
    from baoxue.events.bus import EventBus

    bus = EventBus(baoxue_infra.nats_url, namespace=event_namespace, client_name="test-publisher")
    await bus.connect()
    await bus.ensure_streams()
    try:
        yield EventPublisher(bus)
    finally:
        await bus.close()


@pytest.fixture
def nats_server_factory(tmp_path: Path) -> Iterator[Callable[[], NatsServerProcess]]:
    servers: list[NatsServerProcess] = []

    def spawn() -> NatsServerProcess:
        server = NatsServerProcess(tmp_path / f"nats-{len(servers)}")
        server.start()
        servers.append(server)
        return server

    yield spawn
    for server in servers:
        server.kill()


def pytest_report_header(config: pytest.Config) -> str:
    db = os.environ.get("TEST_DATABASE_URL", "")
    return (
        f"baoxue: database={'external ' + db.split('@')[-1] if db else 'embedded/testcontainers'}, "
        f"nats={os.environ.get('TEST_NATS_URL') or 'embedded/testcontainers'}"
    )
