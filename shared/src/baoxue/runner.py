"""``make run``: the whole of Baoxue on one machine, one command, Ctrl-C stops everything.

Starts (unless URLs are given) a NATS server with JetStream under ``var/nats`` on a port of its own,
starts the four services as uvicorn processes at once (``baoxue serve NAME --migrate``: each migrates
its own database first, so the four import and migrate side by side rather than one after another in
this process), waits until each ``/ready`` answers 200, then prints the URLs and a token command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from baoxue.auth.tokens import ensure_dev_keypair
from baoxue.catalog import DEFAULT_PORTS, installed_services
from baoxue.infra import NatsServerProcess, create_postgres_database, free_port
from baoxue.settings import DEV_JWT_KEY_FILE

EMBEDDED_NATS_PORT = 14222


def service_env(name: str, var_dir: Path, nats_url: str, server_url: str | None) -> dict[str, str]:
    prefix = name.upper() + "_"
    env = dict(os.environ)
    env.setdefault(prefix + "PORT", str(DEFAULT_PORTS.get(name, 8100)))
    env.setdefault("BAOXUE_VAR_DIR", str(var_dir))
    env["BAOXUE_NATS_URL"] = nats_url
    if server_url and not env.get(prefix + "DATABASE_URL"):
        env[prefix + "DATABASE_URL"] = create_postgres_database(server_url, f"baoxue_{name}")
    return env


def wait_ready(
    urls: dict[str, str], timeout: float, procs: dict[str, subprocess.Popen[bytes]] | None = None
) -> list[str]:
    """Poll every ``/ready`` until 200; returns the services that never became ready.

    With ``procs`` (the services' processes by name), a service whose process has exited is given up on
    at once (and returned) instead of being polled until ``timeout``.
    """
    pending = dict(urls)
    exited: list[str] = []
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while pending and time.monotonic() < deadline:
            for name, base in list(pending.items()):
                if procs is not None and name in procs and procs[name].poll() is not None:
                    exited.append(name)
                    pending.pop(name)
                    continue
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(base + "/ready").status_code == 200:
                        pending.pop(name)
            time.sleep(0.3)
    return exited + list(pending)


def run(
    services: list[str] | None = None, *, ready_timeout: float = 60.0, exit_when_ready: bool = False
) -> int:
    var_dir = Path(os.environ.get("BAOXUE_VAR_DIR", "var")).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    names = services or installed_services()
    ensure_dev_keypair(Path(os.environ.get("BAOXUE_JWT_PUBLIC_KEY_FILE", DEV_JWT_KEY_FILE)))
    nats: NatsServerProcess | None = None
    nats_url = os.environ.get("BAOXUE_NATS_URL")
    if not nats_url:
        nats = NatsServerProcess(var_dir / "nats", port=free_port(EMBEDDED_NATS_PORT))
        nats.start()
        nats_url = nats.url
        print(f"NATS (JetStream, embedded)  {nats_url}   store: {var_dir / 'nats'}")
    server_url = os.environ.get("BAOXUE_DATABASE_SERVER_URL")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}

    def stop_all(*_: object) -> None:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if nats:
            nats.stop()

    try:
        for name in names:
            env = service_env(name, var_dir, nats_url, server_url)
            port = int(env[name.upper() + "_PORT"])
            urls[name] = f"http://127.0.0.1:{port}"
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "baoxue", "serve", name, "--migrate"], env=env
            )
        missing = wait_ready(urls, ready_timeout, procs)
        if missing:
            for name in missing:
                code = procs[name].poll()
                if code is None:
                    print(f"{name}: not ready after {ready_timeout:.0f}s", file=sys.stderr)
                else:
                    print(
                        f"{name}: exited with {code} before it was ready (its log is above)", file=sys.stderr
                    )
            stop_all()
            return 1
        print("\nBaoxue is ready:")
        for name, base in urls.items():
            print(f"  {name:<11} {base}   docs: {base}/docs")
        print("\nA token for the demo identity provider (district bureau):")
        print("  .venv/bin/baoxue token --role bureau --org 370406D01")
        print(
            '  curl -H "Authorization: Bearer $(.venv/bin/baoxue token --role bureau --org 370406D01)" '
            f"{urls.get(names[0], '')}/v1/me"
        )
        if exit_when_ready:
            stop_all()
            return 0
        print("\nCtrl-C stops everything.")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while True:
            for name, p in procs.items():
                if p.poll() is not None:
                    print(f"{name} exited with {p.returncode}; stopping the others", file=sys.stderr)
                    stop_all()
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…")
        stop_all()
        return 0
    except BaseException:
        stop_all()
        raise
