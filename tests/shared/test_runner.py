"""``baoxue run`` (``make run``): each service migrates its own database as it starts, and a service that
dies before it is ready stops the run at once with its name, instead of a minute's wait for ``/ready``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from baoxue.infra import free_port
from baoxue.runner import wait_ready
from baoxue.testing.infrastructure import TestInfrastructure


def test_wait_ready_gives_up_on_a_process_that_has_exited_without_waiting_for_the_timeout() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait(30)
    started = time.monotonic()
    missing = wait_ready(
        {"registry": f"http://127.0.0.1:{free_port()}"}, timeout=30, procs={"registry": dead}
    )
    assert missing == ["registry"]
    assert time.monotonic() - started < 5


def _run(
    tmp_path: Path, infra: TestInfrastructure, namespace: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``baoxue run --service registry --exit-when-ready`` on the run's NATS, with its own var dir and port."""
    environment = {
        **os.environ,
        "BAOXUE_VAR_DIR": str(tmp_path / "var"),
        "BAOXUE_NATS_URL": infra.nats_url,
        "BAOXUE_JWT_PUBLIC_KEY_FILE": str(tmp_path / "jwt-key.pem"),
        "REGISTRY_PORT": str(free_port()),
        "REGISTRY_EVENT_NAMESPACE": namespace,
        **env,
    }
    environment.pop("BAOXUE_DATABASE_SERVER_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "baoxue", "run", "--service", "registry", "--exit-when-ready"],
        env=environment,
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
def test_a_fresh_service_migrates_its_own_database_and_becomes_ready(
    tmp_path: Path, baoxue_infra: TestInfrastructure, event_namespace: str
) -> None:
    database = tmp_path / "registry.db"
    result = _run(tmp_path, baoxue_infra, event_namespace, REGISTRY_DATABASE_URL=f"sqlite:///{database}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Baoxue is ready" in result.stdout
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() is not None
        assert conn.execute("SELECT count(*) FROM children").fetchone() == (0,)


def test_a_service_that_dies_before_it_is_ready_fails_the_run_at_once_and_is_named(
    tmp_path: Path, baoxue_infra: TestInfrastructure, event_namespace: str
) -> None:
    (tmp_path / "not-a-directory").write_text("")  # its database cannot be created: the migration fails
    started = time.monotonic()
    result = _run(
        tmp_path,
        baoxue_infra,
        event_namespace,
        REGISTRY_DATABASE_URL=f"sqlite:///{tmp_path / 'not-a-directory' / 'registry.db'}",
    )
    assert result.returncode == 1
    assert "registry: exited with 1 before it was ready" in result.stderr, result.stderr[-2000:]
    assert time.monotonic() - started < 55  # not the 60 s ready timeout
