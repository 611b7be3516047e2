"""The four services as real processes for the end-to-end test, on the test run's infrastructure.

PostgreSQL (``TEST_DATABASE_URL``): one database per service created for this run and dropped after;
else SQLite files. NATS: the run's server (``TEST_NATS_URL`` or the plugin's spawned nats-server) with
an event namespace of this run's own, so concurrent runs never see each other's streams.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from baoxue.catalog import load_service
from baoxue.infra import create_postgres_database, drop_postgres_database, free_port
from baoxue.migrations import upgrade
from baoxue.runner import wait_ready
from baoxue.testing.infrastructure import TestInfrastructure

SERVICES = ("registry", "enrollment", "casework", "notify")


@dataclass
class Stack:
    urls: dict[str, str]
    provincial_port: int
    key_file: Path
    logs: Path
    databases: dict[str, str]
    """service → database URL"""
    nats_url: str
    namespace: str


@contextlib.contextmanager
def running_services(infra: TestInfrastructure, key_file: Path, tmp: Path) -> Iterator[Stack]:
    """Migrate a fresh database per service, start ``python -m baoxue serve <svc>`` for each on a free
    port, wait for ``/ready``; stop the processes and drop the databases afterwards."""
    namespace = f"e2e{infra.run_id}"
    provincial_port = free_port()
    databases: list[str] = []
    database_urls: dict[str, str] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    logs = tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for name in SERVICES:
            if infra.database_server_url:
                db_name = f"baoxue_{namespace}_{name}"
                url = create_postgres_database(infra.database_server_url, db_name)
                databases.append(db_name)
            else:
                url = f"sqlite:///{tmp / (name + '.db')}"
            upgrade(load_service(name).migrations_dir, url)
            database_urls[name] = url
            port = free_port()
            env = dict(os.environ)
            env.update(
                {
                    f"{name.upper()}_PORT": str(port),
                    f"{name.upper()}_DATABASE_URL": url,
                    "BAOXUE_NATS_URL": infra.nats_url,
                    "BAOXUE_EVENT_NAMESPACE": namespace,
                    "BAOXUE_VAR_DIR": str(tmp / "var"),
                    "BAOXUE_JWT_PUBLIC_KEY_FILE": str(key_file),
                    "ENROLLMENT_PROVINCIAL_BASE_URL": f"http://127.0.0.1:{provincial_port}",
                    "CASEWORK_SIMULATION": "true",  # the year is played: censuses completed on its days
                    "ENROLLMENT_SIMULATION": "true",  # … and deferrals filed on its September days
                }
            )
            log = (logs / f"{name}.log").open("wb")
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "baoxue", "serve", name], env=env, stdout=log, stderr=subprocess.STDOUT
            )
            urls[name] = f"http://127.0.0.1:{port}"
        missing = wait_ready(urls, timeout=300, procs=procs)  # a loaded shared machine starts them slowly
        if missing:
            exited = {name: procs[name].poll() for name in missing if procs[name].poll() is not None}
            raise RuntimeError(f"not ready: {missing}, exited: {exited} (logs in {logs})")
        yield Stack(
            urls=urls,
            provincial_port=provincial_port,
            key_file=key_file,
            logs=logs,
            databases=database_urls,
            nats_url=infra.nats_url,
            namespace=namespace,
        )
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if infra.database_server_url:
            for db_name in databases:
                with contextlib.suppress(Exception):
                    drop_postgres_database(infra.database_server_url, db_name)
