"""Creating a stream retries a failure on the server's side (a 500), against a NATS server of the test's
own whose store cannot create the stream's directory: a file lies where the directory would go."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from nats.js.errors import ServerError

from baoxue.events import bus as bus_module
from baoxue.events.bus import EventBus
from baoxue.infra import NatsServerProcess


class _Blocked:
    """The file standing where a stream's store directory would be created."""

    def __init__(self, server: NatsServerProcess, name: str) -> None:
        self.path: Path = server.store_dir / "jetstream" / "$G" / "streams" / name
        self.block()

    def block(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("not a directory")


@pytest.fixture
def server(nats_server_factory) -> NatsServerProcess:
    return nats_server_factory()  # type: ignore[no-any-return]


@pytest_asyncio.fixture
async def bus(server: NatsServerProcess) -> AsyncIterator[EventBus]:
    bus = EventBus(server.url, namespace="retry", client_name="test-stream-retry")
    await bus.connect()
    yield bus
    await bus.close()


class _Retries(logging.Handler):
    """Records the bus's retry warnings; ``reblock``: puts the file back before each retry (the server
    removes what lay in the way when its attempt fails), so every attempt fails."""

    def __init__(self, blocked: _Blocked, *, reblock: bool) -> None:
        super().__init__()
        self.blocked, self.reblock = blocked, reblock
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "stream not created; retrying":
            self.records.append(record)
            if self.reblock:
                self.blocked.block()


async def _ensure(bus: EventBus, handler: _Retries) -> None:
    bus_module.log.addHandler(handler)
    try:
        await bus.ensure_streams(("registry",))
    finally:
        bus_module.log.removeHandler(handler)


async def test_the_server_really_fails_a_blocked_stream(bus: EventBus, server: NatsServerProcess) -> None:
    _Blocked(server, bus.stream_config("registry").name)
    with pytest.raises(ServerError) as failed:  # the condition the retry is for, and no retry here
        await bus.js.add_stream(bus.stream_config("registry"))
    assert failed.value.code == 500


async def test_a_stream_the_server_failed_to_create_is_created_on_the_retry(
    bus: EventBus, server: NatsServerProcess
) -> None:
    name = bus.stream_config("registry").name
    handler = _Retries(_Blocked(server, name), reblock=False)
    await _ensure(bus, handler)
    assert (await bus.stream_info("registry")).config.name == name
    assert len(handler.records) == 1
    assert handler.records[0].err_code is not None  # type: ignore[attr-defined]
    assert handler.records[0].stream == name  # type: ignore[attr-defined]


async def test_a_stream_the_server_keeps_failing_raises_after_the_retries(
    bus: EventBus, server: NatsServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bus_module, "STREAM_CREATE_DELAYS", (0.01, 0.01))
    handler = _Retries(_Blocked(server, bus.stream_config("registry").name), reblock=True)
    with pytest.raises(ServerError):
        await _ensure(bus, handler)
    assert len(handler.records) == 2  # three attempts: the first and one after each pause
