"""deploy/postgres/init-databases.sh against a throwaway PostgreSQL server of the test's own
(initdb in a temporary directory, Unix socket only): one database per service, each owned by its
role, and no role can connect to another service's database.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from baoxue.infra import free_port
from tests.deploy.files import DEPLOY, SERVICES

BINDIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
INITDB = next(
    (str(Path(d) / "initdb") for d in BINDIRS if (Path(d) / "initdb").exists()), shutil.which("initdb")
)
pytestmark = pytest.mark.skipif(
    INITDB is None or shutil.which("psql") is None, reason="PostgreSQL server binaries (initdb) not installed"
)


def as_server_user(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` account when we are root."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]


@pytest.fixture
def server() -> Iterator[dict[str, str]]:
    root = Path(tempfile.mkdtemp(prefix="baoxue-pginit-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
    data, port = root / "data", str(free_port())
    bindir = str(Path(INITDB).parent)  # type: ignore[arg-type]
    result = as_server_user([INITDB, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])  # type: ignore[list-item]
    assert result.returncode == 0, result.stderr
    options = f"-k {root} -p {port} -c listen_addresses=''"
    result = as_server_user(
        [f"{bindir}/pg_ctl", "-D", str(data), "-o", options, "-w", "-l", str(root / "log"), "start"]
    )
    assert result.returncode == 0, result.stderr
    try:
        yield {"PGHOST": str(root), "PGPORT": port}
    finally:
        as_server_user([f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def psql(env: dict[str, str], user: str, database: str, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", database, "-c", sql],
        env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_init_script_creates_one_isolated_database_per_service(server: dict[str, str]) -> None:
    passwords = {f"{name.upper()}_DB_PASSWORD": f"pw-{name}-o'quote" for name in SERVICES}
    result = subprocess.run(
        ["bash", str(DEPLOY / "postgres" / "init-databases.sh")],
        env={**os.environ, **server, **passwords, "POSTGRES_USER": "postgres"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    owners = psql(server, "postgres", "postgres", "SELECT datname, pg_get_userbyid(datdba) FROM pg_database")
    assert {f"baoxue_{n}|{n}" for n in SERVICES} <= set(owners.stdout.split())
    for name in SERVICES:
        own = psql(server, name, f"baoxue_{name}", "CREATE TABLE t (id int); SELECT current_user")
        assert own.returncode == 0 and own.stdout.split()[-1] == name, own.stderr
        for other in set(SERVICES) - {name}:
            foreign = psql(server, name, f"baoxue_{other}", "SELECT 1")
            assert foreign.returncode != 0 and "permission denied" in foreign.stderr, (name, other)
    # passwords went in as data, quote included (psql variables, not SQL text)
    shadow = psql(
        server, "postgres", "postgres", "SELECT count(*) FROM pg_authid WHERE rolpassword IS NOT NULL"
    )
    assert shadow.stdout.strip() == str(len(SERVICES))


def test_init_script_stops_on_a_missing_password(server: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", str(DEPLOY / "postgres" / "init-databases.sh")],
        env={**os.environ, **server, "POSTGRES_USER": "postgres", "REGISTRY_DB_PASSWORD": "x"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "ENROLLMENT_DB_PASSWORD is not set" in result.stderr
