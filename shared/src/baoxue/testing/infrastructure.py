"""Where the tests' database and NATS come from.

1. ``TEST_DATABASE_URL`` / ``TEST_NATS_URL`` when set (CI points them at the machine's PostgreSQL and
   NATS); 2. else testcontainers, when a Docker engine answers; 3. else the embedded ones: SQLite files
   and a ``nats-server`` spawned for this run. Every run gets database and stream names of its own,
   so runs sharing one server never see each other's data.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine

from baoxue.db import sync_url
from baoxue.infra import NatsServerProcess, create_postgres_database, drop_postgres_database
from baoxue.migrations import upgrade


def docker_available() -> bool:
    """True when a Docker engine answers on its socket (testcontainers needs one)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return bool(os.environ.get("DOCKER_HOST"))
    path = host.removeprefix("unix://")
    if not os.path.exists(path):
        return False
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
        s.settimeout(0.5)
        s.connect(path)
        s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        return b"OK" in s.recv(256)
    return False


@dataclass
class TestInfrastructure:
    """The database server (or SQLite folder) and NATS URL of one test run."""

    __test__ = False  # not a test class, despite the name

    kind: str
    tmp: Path
    nats_url: str
    database_server_url: str | None
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    _created: list[str] = field(default_factory=list)
    _migrated: dict[str, str] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def database_url(self, service: str) -> str:
        """A fresh database for ``service`` in this run (created, not migrated)."""
        name = f"baoxue_t{self.run_id}_{service}"
        if self.database_server_url is None:
            return f"sqlite:///{self.tmp / (name + '.db')}"
        url = create_postgres_database(self.database_server_url, name)
        self._created.append(name)
        return url

    def database_with(self, name: str, metadata: MetaData) -> str:
        """A fresh database named after ``name`` with ``metadata``'s tables created (a library test's own
        tables, no service's migrations)."""
        url = self.database_url(name)
        engine = create_engine(sync_url(url))
        try:
            metadata.create_all(engine)
        finally:
            engine.dispose()
        return url

    def migrated_database_url(self, service: str, migrations_dir: Path) -> str:
        """The run's database for ``service`` at the head revision (migrated once per run)."""
        if service not in self._migrated:
            url = self.database_url(service)
            upgrade(migrations_dir, url)
            self._migrated[service] = url
        return self._migrated[service]

    def close(self) -> None:
        if self.kind != "embedded":  # a shared server outlives the run: leave none of its streams there
            with contextlib.suppress(Exception):
                delete_run_streams(self.nats_url, self.run_id)
        if self.database_server_url:
            for name in self._created:
                with contextlib.suppress(Exception):
                    drop_postgres_database(self.database_server_url, name)
        self._stack.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def delete_run_streams(nats_url: str, run_id: str, *, timeout: float = 30.0) -> int:
    """Delete the streams of one test run on a shared NATS server: those of its namespaces
    (``t<run_id>n<k>``, ``e2e<run_id>``, ``k<run_id><svc>``), whichever test made them and whether or not it cleaned up
    (a subprocess stack, a killed service). Runs in a thread of its own, so a caller inside an event
    loop can use it too. Returns how many were deleted."""
    import asyncio
    import threading

    import nats

    from baoxue.events.bus import all_streams

    marker = run_id.upper()
    prefixes = (f"T{marker}N", f"E2E{marker}", f"K{marker}")  # plugin, e2e stack, service kill tests
    deleted: list[str] = []

    async def sweep() -> None:
        nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=1)
        try:
            js = nc.jetstream(timeout=10)
            for info in await all_streams(js):
                name = str(info.config.name)
                if name.split("_", 1)[0].startswith(prefixes):
                    await js.delete_stream(name)
                    deleted.append(name)
        finally:
            await nc.close()

    worker = threading.Thread(target=lambda: asyncio.run(sweep()), daemon=True)
    worker.start()
    worker.join(timeout)
    return len(deleted)


def provide_infrastructure(tmp: Path) -> TestInfrastructure:
    database = os.environ.get("TEST_DATABASE_URL") or None
    nats_url = os.environ.get("TEST_NATS_URL") or None
    stack = contextlib.ExitStack()
    kind = "external" if (database or nats_url) else "embedded"
    if not database and not nats_url and docker_available() and not os.environ.get("TEST_NO_DOCKER"):
        pg, nats_container = _start_containers(stack)
        database, nats_url, kind = pg, nats_container, "docker"
    if not nats_url:
        server = NatsServerProcess(tmp / "nats")
        server.start()
        stack.callback(server.stop)
        nats_url = server.url
    infra = TestInfrastructure(kind=kind, tmp=tmp, nats_url=nats_url, database_server_url=database)
    infra._stack = stack
    return infra


def _start_containers(stack: contextlib.ExitStack) -> tuple[str, str]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.postgres import PostgresContainer

    pg: Any = stack.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
    nats: Any = stack.enter_context(
        DockerContainer("nats:2.10-alpine").with_command("-js").with_exposed_ports(4222)
    )
    wait_for_logs(nats, "Server is ready")
    nats_url = f"nats://{nats.get_container_host_ip()}:{nats.get_exposed_port(4222)}"
    return pg.get_connection_url(), nats_url
