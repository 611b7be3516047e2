"""The gateway configuration in a real nginx: deploy/gateway/nginx.conf with the service host names
pointed at stand-in HTTP servers on this machine. Each prefix reaches its own service with the prefix
stripped (query string kept); unknown paths get an RFC 9457 problem. Skips without nginx
(Debian: `apt-get install -y nginx`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from baoxue.infra import free_port, port_open
from tests.deploy.files import DEPLOY, SERVICES

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx not installed (Debian: apt-get install -y nginx)"
)


def stand_in(service: str) -> ThreadingHTTPServer:
    """An HTTP server that answers with the service's name, the path it received and the prefix header."""

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {"service": service, "path": self.path, "prefix": self.headers.get("X-Forwarded-Prefix")}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Echo)


def local_config(text: str, backends: dict[str, int], port: int, tmp: Path) -> str:
    subs = [(rf"server {name}:{SERVICES[name]};", f"server 127.0.0.1:{p};") for name, p in backends.items()]
    subs += [
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
        ("pid /tmp/nginx.pid;", f"pid {tmp}/nginx.pid;"),
        # temporary files of this instance (the package's default lies under /var/lib/nginx)
        ("http {", "http {\n" + "".join(f"    {kind}_temp_path {tmp}/{kind};\n" for kind in TEMP_PATHS)),
    ]
    for old, new in subs:
        assert text.count(old) == 1, f"deploy/gateway/nginx.conf changed shape: {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    servers = {name: stand_in(name) for name in SERVICES}
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    config = tmp_path / "nginx.conf"
    text = (DEPLOY / "gateway" / "nginx.conf").read_text(encoding="utf-8")
    config.write_text(local_config(text, {n: s.server_port for n, s in servers.items()}, port, tmp_path))
    nginx = str(NGINX)
    check = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(config)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "stderr").open("wb"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port):
            assert process.poll() is None, (tmp_path / "stderr").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        for server in servers.values():
            server.shutdown()
            server.server_close()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def test_each_prefix_reaches_its_service_with_the_prefix_stripped(gateway: str) -> None:
    for service in SERVICES:
        status, _, body = get(f"{gateway}/{service}/v1/things?limit=5&cursor=abc")
        assert status == 200
        assert json.loads(body) == {
            "service": service,
            "path": "/v1/things?limit=5&cursor=abc",
            "prefix": f"/{service}",
        }
        status, _, body = get(f"{gateway}/{service}/health")
        assert json.loads(body)["path"] == "/health"


def test_unknown_paths_are_problems_and_the_gateway_has_its_own_health(gateway: str) -> None:
    status, content_type, body = get(f"{gateway}/billing/v1/x")
    assert status == 404 and content_type == "application/problem+json"
    assert json.loads(body)["status"] == 404
    # a prefix must be followed by a slash: /registryx is not the registry
    assert get(f"{gateway}/registryx/v1")[0] == 404
    status, _, body = get(f"{gateway}/healthz")
    assert status == 200 and body.strip() == "ok"


def test_access_log_format_leaves_out_query_strings() -> None:
    text = (DEPLOY / "gateway" / "nginx.conf").read_text(encoding="utf-8")
    (log_format,) = re.findall(r"log_format baoxue (.*?);", text, re.S)
    assert "$uri" in log_format and "$request_uri" not in log_format and "$args" not in log_format
    assert re.search(r"\$request\b(?!_)", log_format) is None
