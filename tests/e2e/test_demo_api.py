"""The demo client against a real HTTP server that closes a connection without answering, as uvicorn does
when its keep-alive timeout fires at the moment a client reuses the idle connection."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baoxue.auth.tokens import ensure_dev_keypair

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

from demo.api import BUREAU, KEEPALIVE_EXPIRY_SECONDS, RETRIES_ON_DISCONNECT, Api

BODY = b'{"ok": true}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


class DroppingServer:
    """Accepts connections on loopback; the first ``drops`` requests are read and the connection closed
    with no answer, the rest get a JSON 200. Records the method of every request it read."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.methods: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                if not head:
                    continue
                self.methods.append(head.split(b" ", 1)[0].decode())
                if len(self.methods) <= self.drops:
                    continue  # closed without a response
                conn.sendall(ANSWER)

    def close(self) -> None:
        self._sock.close()


@pytest.fixture
def key(tmp_path: Path) -> Path:
    return ensure_dev_keypair(tmp_path / "jwt-key.pem")


@pytest.fixture
def server() -> Iterator[DroppingServer]:
    running = DroppingServer(drops=1)
    yield running
    running.close()


def _api(server: DroppingServer, key: Path) -> Api:
    return Api({"registry": server.url}, key, issuer="baoxue-dev", audience="baoxue")


def test_a_read_whose_connection_is_dropped_unanswered_is_sent_again(
    server: DroppingServer, key: Path
) -> None:
    api = _api(server, key)
    try:
        assert api.get("registry", "/children", BUREAU) == {"ok": True}
    finally:
        api.close()
    assert server.methods == ["GET", "GET"]


def test_a_write_whose_connection_is_dropped_is_not_sent_again(server: DroppingServer, key: Path) -> None:
    api = _api(server, key)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            api.post("registry", "/children", BUREAU, json={})
    finally:
        api.close()
    assert server.methods == ["POST"]


def test_a_read_gives_up_after_its_retries(key: Path) -> None:
    always = DroppingServer(drops=100)
    api = _api(always, key)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            api.get("registry", "/children", BUREAU)
    finally:
        api.close()
        always.close()
    assert always.methods == ["GET"] * (RETRIES_ON_DISCONNECT + 1)


def test_idle_connections_are_dropped_before_uvicorns_keep_alive_timeout() -> None:
    import uvicorn

    assert uvicorn.Config(app=None).timeout_keep_alive > KEEPALIVE_EXPIRY_SECONDS
