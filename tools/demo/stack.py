"""The services the demo talks to: reuse a running stack, or start the embedded one and stop it after.

Also runs the provincial student-registry platform simulator (``baoxue.fakes.provincial_platform``)
in a thread, behind real HTTP, because enrollment imports student records from it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn

from baoxue.fakes.provincial_platform import create_app as platform_app
from baoxue.infra import free_port, port_open
from baoxue.runner import wait_ready

_RUN = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from baoxue.runner import run; raise SystemExit(run(ready_timeout=300.0))"
)
"""``baoxue run`` with Ctrl-C (SIGINT) handled even when this process was started in the background
(which leaves SIGINT ignored, and children inherit that): SIGINT stops it cleanly at any phase, also
before it is ready, whereas SIGTERM before ready would leave its services and NATS running. It waits up
to 300 s for the services (``baoxue run`` alone gives up after 60 s: too short on a loaded machine)."""


def answering(urls: dict[str, str]) -> bool:
    """True when every service answers ``/ready`` with 200 right now."""
    return not wait_ready(urls, timeout=1.0)


@contextlib.contextmanager
def embedded_stack(
    urls: dict[str, str], var_dir: Path, *, provincial_url: str, ready_timeout: float = 300.0
) -> Iterator[subprocess.Popen[bytes] | None]:
    """Yield with the services answering: the running ones, or ``baoxue run`` started under ``var_dir``.

    A stack this function started is stopped (SIGTERM to ``baoxue run``, which stops its children and
    its NATS server) when the block ends.
    """
    if answering(urls):
        yield None
        return
    var_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["BAOXUE_VAR_DIR"] = str(var_dir)
    env.setdefault("ENROLLMENT_PROVINCIAL_BASE_URL", provincial_url)
    env.setdefault("NOTIFY_SIMULATION", "true")  # the demo plays the year forward: sweeps for later dates
    env.setdefault("CASEWORK_SIMULATION", "true")  # … and completes censuses on the days it plays
    env.setdefault("ENROLLMENT_SIMULATION", "true")  # … files deferrals and resolves tasks on those days
    for name, url in urls.items():
        env[f"{name.upper()}_PORT"] = url.rsplit(":", 1)[1].rstrip("/")
    log = (var_dir / "stack.log").open("ab")
    process = subprocess.Popen([sys.executable, "-c", _RUN], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + ready_timeout
        while not answering(urls):
            if process.poll() is not None:
                raise RuntimeError(
                    f"baoxue run exited with {process.returncode} (see {var_dir / 'stack.log'})"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"services not ready after {ready_timeout:.0f}s (see {var_dir / 'stack.log'})"
                )
            time.sleep(0.5)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C: ``baoxue run`` stops services and NATS
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


class ProvincialPlatform:
    """The provincial platform simulator served by uvicorn in a daemon thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._server = uvicorn.Server(
            uvicorn.Config(platform_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, name="provincial-platform", daemon=True)

    def start(self) -> ProvincialPlatform:
        if port_open("127.0.0.1", self.port):
            raise RuntimeError(f"port {self.port} is taken: is another provincial simulator running?")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise TimeoutError("the provincial platform simulator did not start")
            time.sleep(0.05)
        return self

    def seed(self, records: list[dict[str, str]]) -> int:
        """Load the platform's student records (its export is what enrollment imports)."""
        total = 0
        with httpx.Client(base_url=self.url, timeout=120) as client:
            for start in range(0, len(records), 5000):
                response = client.post("/_control/records", json=records[start : start + 5000])
                response.raise_for_status()
                total = int(response.json()["records"])
        return total

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def pick_port(preferred: int) -> int:
    return free_port(preferred)
