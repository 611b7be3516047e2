"""Helpers shared by the notify service's tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import uvicorn

from baoxue.testing.plugin import RunningService

BUREAU = "370406D01"
POLICE = "370406D02"
POVERTY = "370406D03"
JUSTICE = "370406D06"
TOWN_A = "370406001"
DISTRICT_A = "37040600101"
SCHOOL_A = "37040600101001"
TOWN_B = "370406101"
SCHOOL_B = "37040610101001"

QUIET = {"sweep_enabled": False, "delivery_enabled": False}
"""Tests drive the sweep and the webhook deliveries themselves."""


async def start_notify(start_service: Any, **overrides: Any) -> RunningService:
    svc: RunningService = await start_service("notify", **(QUIET | overrides))
    await svc.wait_events_ready()
    return svc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def http_server() -> AsyncIterator[Any]:
    """Serve an ASGI app on a real local port for the test: ``url = await http_server(app)``."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def serve(app: Any) -> str:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        while not server.started:
            await asyncio.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    try:
        yield serve
    finally:
        for server, task in servers:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=10)
