"""NATS configuration: both files pass `nats-server -t`, state the durability settings, and the compose
file's configuration really forms a three-node JetStream cluster on which the services' EventBus
creates R3 streams that survive the loss of one node.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest

from baoxue.events.bus import EventBus
from baoxue.infra import free_port, port_open
from tests.deploy.files import DEPLOY, nats_server

CONFIGS = [DEPLOY / "nats" / "nats.conf", DEPLOY / "k8s" / "base" / "nats" / "nats.conf"]
AUTH = {"NATS_USER": "baoxue", "NATS_PASSWORD": "test-only-password"}

needs_nats = pytest.mark.skipif(
    nats_server() is None, reason="no nats-server 2.10+ (make install provides one)"
)


@needs_nats
@pytest.mark.parametrize("config", CONFIGS, ids=["compose", "kubernetes"])
def test_configuration_is_valid(config: Path) -> None:
    result = subprocess.run(
        [nats_server(), "-t", "-c", str(config)],  # type: ignore[list-item]
        env={"NATS_SERVER_NAME": "nats-1", **AUTH},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.parametrize("config", CONFIGS, ids=["compose", "kubernetes"])
def test_durability_settings_are_stated(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    settings = dict(re.findall(r"(?m)^\s*(\w+):\s*(\S+)\s*$", text))
    assert settings["sync_interval"] == "always"
    assert settings["store_dir"] == "/data/jetstream"
    assert re.fullmatch(r"\d+GB", settings["max_file_store"])
    assert settings["server_name"] == "$NATS_SERVER_NAME"
    routes = re.findall(r"nats-route://([\w.-]+):6222", text)
    assert len(set(routes)) == 3, routes
    # the comment beside sync_interval explains the trade-off
    block = text[text.index("jetstream {") : text.index("sync_interval: always")]
    assert "fsync" in block and "PubAck" in block


def local_cluster_config(text: str, node: int, ports: dict[str, list[int]], store: Path) -> str:
    """deploy/nats/nats.conf with addresses and the store moved to this machine; all else unchanged."""
    subs = [
        (r"(?m)^listen: 0\.0\.0\.0:4222$", f"listen: 127.0.0.1:{ports['client'][node]}"),
        (r"(?m)^http: 0\.0\.0\.0:8222$", f"http: 127.0.0.1:{ports['monitor'][node]}"),
        (r"(?m)^(\s+)store_dir: /data/jetstream$", rf'\g<1>store_dir: "{store}"'),
        (r"(?m)^(\s+)listen: 0\.0\.0\.0:6222$", rf"\g<1>listen: 127.0.0.1:{ports['cluster'][node]}"),
    ]
    subs += [
        (rf"nats-route://nats-{i + 1}:6222", f"nats-route://127.0.0.1:{ports['cluster'][i]}")
        for i in range(3)
    ]
    for pattern, replacement in subs:
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"deploy/nats/nats.conf changed shape: {pattern!r} matched {count} times"
    return text


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ports = {kind: [free_port() for _ in range(3)] for kind in ("client", "monitor", "cluster")}
        self.processes: list[subprocess.Popen[bytes] | None] = [None, None, None]
        self.template = (DEPLOY / "nats" / "nats.conf").read_text(encoding="utf-8")

    def start(self, node: int) -> None:
        config = self.tmp / f"nats-{node + 1}.conf"
        config.write_text(
            local_cluster_config(self.template, node, self.ports, self.tmp / f"store-{node + 1}")
        )
        log = (self.tmp / f"nats-{node + 1}.log").open("ab")
        self.processes[node] = subprocess.Popen(
            [nats_server(), "-c", str(config)],  # type: ignore[list-item]
            env={"NATS_SERVER_NAME": f"nats-{node + 1}", **AUTH},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def kill(self, node: int) -> None:
        process = self.processes[node]
        if process and process.poll() is None:
            process.kill()
            process.wait()
        self.processes[node] = None

    def url(self, node: int) -> str:
        return f"nats://{AUTH['NATS_USER']}:{AUTH['NATS_PASSWORD']}@127.0.0.1:{self.ports['client'][node]}"

    def varz(self, node: int) -> dict:  # type: ignore[type-arg]
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['monitor'][node]}/varz", timeout=2) as r:
            return json.load(r)  # type: ignore[no-any-return]

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for node in range(3):
            url = f"http://127.0.0.1:{self.ports['monitor'][node]}/healthz"  # as compose's healthcheck
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"nats-{node + 1} not healthy: see {self.tmp}"
                time.sleep(0.2)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        for node in range(3):
            c.start(node)
        c.wait_healthy()
        yield c
    finally:
        for node in range(3):
            c.kill(node)


@needs_nats
async def test_compose_configuration_forms_a_cluster_with_r3_streams(cluster: Cluster) -> None:
    varz = cluster.varz(0)
    assert varz["cluster"]["name"] == "baoxue"
    assert varz["jetstream"]["config"]["sync_always"] is True
    # client authentication is on: no credentials, no connection
    anonymous = f"nats://127.0.0.1:{cluster.ports['client'][0]}"
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(anonymous, allow_reconnect=False, connect_timeout=2)

    bus = EventBus(cluster.url(0), namespace="deploytest", client_name="deploy-test", replicas=3)
    await bus.connect()
    try:
        deadline = time.monotonic() + 20
        while True:  # the meta leader is elected a moment after /healthz says ok
            try:
                await bus.ensure_streams(("registry",))
                break
            except Exception:
                assert time.monotonic() < deadline, "the cluster never accepted the stream"
                await asyncio.sleep(0.5)
        info = await bus.stream_info("registry")
        assert info.config.num_replicas == 3
        assert len(info.cluster.replicas) == 2  # a leader and two followers
        while True:  # the new stream's leader may need a moment more before it answers publishes
            try:
                ack = await bus.js.publish(
                    "deploytest.registry.probe.happened", b"{}", headers={"Nats-Msg-Id": "e-1"}
                )
                break
            except (
                nats.errors.NoRespondersError,
                nats.js.errors.NoStreamResponseError,
                nats.errors.TimeoutError,
            ):
                assert time.monotonic() < deadline + 20, "the stream never took an event"
                await asyncio.sleep(0.5)
        assert ack.seq == 1

        # One node lost (its process killed, not stopped): the stream keeps a quorum and takes events.
        leader = info.cluster.leader
        survivor = next(i for i in range(3) if f"nats-{i + 1}" != leader)
        cluster.kill(int(leader.rsplit("-", 1)[1]) - 1)
        survivor_bus = EventBus(
            cluster.url(survivor), namespace="deploytest", client_name="deploy-test-2", replicas=3
        )
        await survivor_bus.connect()
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    ack = await survivor_bus.js.publish(
                        "deploytest.registry.probe.happened", b"{}", headers={"Nats-Msg-Id": "e-2"}, timeout=2
                    )
                    break
                except Exception:
                    assert time.monotonic() < deadline, "no new stream leader after one node was lost"
                    await asyncio.sleep(0.5)
            assert ack.seq == 2
            assert (await survivor_bus.stream_info("registry")).state.messages == 2
        finally:
            await survivor_bus.close()
    finally:
        await bus.close()
    assert port_open("127.0.0.1", cluster.ports["client"][survivor])
