"""The helpers the image runs: the lock filter (build), the entry point and the health check (runtime)."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

from tests.deploy.files import DEPLOY, REPO


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", DEPLOY / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


lockfilter = load("lockfilter")
healthcheck = load("healthcheck")


def runtime_closure(roots: tuple[str, ...]) -> set[str]:
    """What the installed workspace really requires (metadata of this venv, markers and extras evaluated)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = [(lockfilter.canonical(root), frozenset[str]()) for root in roots]
    while stack:
        name, extras = stack.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                stack.append((lockfilter.canonical(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def test_lock_filter_keeps_everything_the_services_need() -> None:
    entries = lockfilter.parse_lock((REPO / "requirements.lock").read_text(encoding="utf-8"))
    chosen = {e.name for e in lockfilter.select(entries, lockfilter.WORKSPACE_MEMBERS)}
    needed = runtime_closure(lockfilter.WORKSPACE_MEMBERS) - set(lockfilter.WORKSPACE_MEMBERS)
    assert needed, "the workspace is not installed in this environment"
    assert needed <= chosen, f"the image would miss {sorted(needed - chosen)}"
    # ... and leaves the dev and bench groups out
    for tool in ("pytest", "ruff", "mypy", "duckdb", "splink", "hypothesis", "testcontainers"):
        assert tool not in chosen, tool


def test_lock_filter_copies_entries_verbatim_with_their_hashes() -> None:
    text = (REPO / "requirements.lock").read_text(encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(DEPLOY / "lockfilter.py"), str(REPO / "requirements.lock"), "--root", "hatchling"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    assert lines[0].startswith("hatchling==")
    requirements = [line for line in lines if "==" in line]
    assert all(line in text.splitlines() for line in lines)
    # every requirement keeps at least one hash line (pip --require-hashes needs one per requirement)
    blocks = out.stdout.split("==")[1:]
    assert len(blocks) == len(requirements) and all("--hash=sha256:" in b for b in blocks)


def test_lock_filter_follows_multi_line_via_lists() -> None:
    lock = (
        "a==1 \\\n    --hash=sha256:aa\n    # via baoxue\n"
        "b==1 \\\n    --hash=sha256:bb\n    # via\n    #   pytest\n    #   a\n"
        "c==1 \\\n    --hash=sha256:cc\n    # via b\n"
        "pytest==8 \\\n    --hash=sha256:pp\n"
        "d==1 \\\n    --hash=sha256:dd\n    # via pytest\n"
    )
    chosen = [e.name for e in lockfilter.select(lockfilter.parse_lock(lock), ("baoxue",))]
    assert chosen == ["a", "b", "c"]


class _Handler(BaseHTTPRequestHandler):
    ready = True

    def do_GET(self) -> None:
        status = 200 if self.path == "/health" or (self.path == "/ready" and _Handler.ready) else 503
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_service() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_healthcheck_port_follows_the_settings_rule() -> None:
    assert healthcheck.service_port({"BAOXUE_SERVICE": "casework"}) == 8103
    assert healthcheck.service_port({"BAOXUE_SERVICE": "casework", "BAOXUE_PORT": "9000"}) == 9000
    env = {"BAOXUE_SERVICE": "casework", "BAOXUE_PORT": "9000", "CASEWORK_PORT": "9100"}
    assert healthcheck.service_port(env) == 9100
    with pytest.raises(ValueError):
        healthcheck.service_port({})


def test_healthcheck_exit_codes(fake_service: int) -> None:
    env = {"BAOXUE_SERVICE": "notify", "NOTIFY_PORT": str(fake_service)}
    assert healthcheck.main([], env) == 0
    _Handler.ready = False
    try:
        assert healthcheck.main(["--path", "/ready"], env) == 1
    finally:
        _Handler.ready = True
    assert healthcheck.main(["--path", "/ready"], env) == 0
    assert healthcheck.main([], {"BAOXUE_SERVICE": "registry", "REGISTRY_PORT": "1"}) == 1
    assert healthcheck.main([], {}) == 2


def entrypoint(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["sh", str(DEPLOY / "docker-entrypoint.sh"), *args],
        env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_entrypoint_refuses_an_unknown_service() -> None:
    result = entrypoint("serve", env={"BAOXUE_SERVICE": "billing"})
    assert result.returncode == 64 and "BAOXUE_SERVICE" in result.stderr
    assert entrypoint("migrate", env={}).returncode == 64


def test_entrypoint_migrates_the_chosen_service(tmp_path: Path) -> None:
    db = tmp_path / "casework.db"
    result = entrypoint(
        "migrate",
        env={
            "BAOXUE_SERVICE": "casework",
            "CASEWORK_DATABASE_URL": f"sqlite:///{db}",
            "BAOXUE_VAR_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr
    assert "casework: migrated to head" in result.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"outbox", "inbox"} <= tables


def test_entrypoint_passes_other_commands_through() -> None:
    result = entrypoint("baoxue", "--help", env={})
    assert result.returncode == 0 and "serve" in result.stdout
