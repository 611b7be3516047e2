"""The image's runtime contract outside Docker: the entry point, in production mode, with keys and
settings shaped like deploy/env.example, migrates and serves a service that becomes ready (database
and NATS reachable), and the container health check sees it. Without keys it refuses to start.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from baoxue.events.bus import EventBus
from baoxue.infra import free_port
from baoxue.pii.crypto import generate_key
from baoxue.testing.infrastructure import TestInfrastructure as Infrastructure
from tests.deploy.files import DEPLOY
from tests.deploy.test_image_tools import healthcheck


def entrypoint_env(extra: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
        **extra,
    }


def run_entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(DEPLOY / "docker-entrypoint.sh"), *args],
        env=entrypoint_env(env), capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def wait_ready(server: subprocess.Popen[str], env: dict[str, str]) -> None:
    """Poll the container health check (readiness) until the service answers 200."""
    deadline = time.monotonic() + 60
    while healthcheck.main(["--path", "/ready", "--timeout", "1"], env) != 0:
        assert server.poll() is None, f"the service exited: {server.stdout.read() if server.stdout else ''}"
        assert time.monotonic() < deadline, "the service never became ready"
        time.sleep(0.3)


@pytest.fixture
def production_env(
    baoxue_infra: Infrastructure, jwt_key_file: Path, tmp_path: Path
) -> Iterator[dict[str, str]]:
    namespace = f"deploy{secrets.token_hex(4)}"
    env = {
        "BAOXUE_SERVICE": "registry",
        "BAOXUE_ENVIRONMENT": "production",
        "BAOXUE_HOST": "127.0.0.1",
        "REGISTRY_PORT": str(free_port()),
        "REGISTRY_DATABASE_URL": baoxue_infra.database_url("registry"),
        "BAOXUE_NATS_URL": baoxue_infra.nats_url,
        "BAOXUE_EVENT_NAMESPACE": namespace,
        "BAOXUE_PII_KEYS": f"k2026a:{generate_key(16)}",
        "BAOXUE_PII_ACTIVE_KEY_ID": "k2026a",
        "BAOXUE_BLIND_INDEX_KEY": generate_key(32),
        "BAOXUE_JWT_ISSUER": "https://idp.example.gov.cn",
        "BAOXUE_JWT_PUBLIC_KEY_FILE": str(jwt_key_file),
        "BAOXUE_VAR_DIR": str(tmp_path),
    }
    yield env


async def test_production_service_migrates_serves_and_becomes_ready(production_env: dict[str, str]) -> None:
    migrate = run_entrypoint(production_env, "migrate")
    assert migrate.returncode == 0, migrate.stderr
    namespace = production_env["BAOXUE_EVENT_NAMESPACE"]
    bus = EventBus(production_env["BAOXUE_NATS_URL"], namespace=namespace, client_name="deploy-test")
    await bus.connect()
    server = subprocess.Popen(
        ["sh", str(DEPLOY / "docker-entrypoint.sh")],  # default command: serve
        env=entrypoint_env(production_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_ready(server, production_env)
        assert healthcheck.main([], production_env) == 0
        # it provisioned its stream on the configured NATS, in the configured namespace
        info = await bus.stream_info("registry")
        assert info.config.subjects == [f"{namespace}.registry.>"]
    finally:
        server.send_signal(signal.SIGTERM)  # `exec` in the entry point: the signal reaches uvicorn
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        finally:
            await bus.delete_streams()
            await bus.close()
        output = server.stdout.read() if server.stdout else ""
    # graceful shutdown completed; uvicorn then re-raises SIGTERM, so the exit status may be the signal
    assert "Application shutdown complete." in output and code in (0, -signal.SIGTERM), output
    for secret in ("BAOXUE_PII_KEYS", "BAOXUE_BLIND_INDEX_KEY"):
        assert production_env[secret].split(":")[-1] not in output, f"{secret} leaked into the log"


def test_production_refuses_to_start_without_keys(production_env: dict[str, str]) -> None:
    env = {k: v for k, v in production_env.items() if k not in ("BAOXUE_PII_KEYS", "BAOXUE_BLIND_INDEX_KEY")}
    env["BAOXUE_PII_ACTIVE_KEY_ID"] = "dev1"
    result = run_entrypoint(env, "migrate")
    assert result.returncode != 0
    assert "development secrets are not allowed in production" in result.stderr
