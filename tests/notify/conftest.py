"""Helpers shared by the notify service's tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
import uvicorn
from sqlalchemy import select
from sqlmodel import col

from baoxue.testing.plugin import RunningService
from baoxue.workdays import CHINA
from notify.escalation.models import Escalation

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


def at_ten(day: dt.date) -> dt.datetime:
    """10:00 in China on ``day``: the time of an event that happened that day."""
    return dt.datetime.combine(day, dt.time(10), tzinfo=CHINA)


async def case_ladders(svc: RunningService, case_id: str) -> list[Escalation]:
    """The case's escalation ladders, oldest first."""
    async with svc.ctx.db.transaction() as s:
        statement = (
            select(Escalation).where(col(Escalation.case_id) == case_id).order_by(col(Escalation.created_at))
        )
        return list((await s.execute(statement)).scalars())


async def school_card(svc: RunningService, headers: dict[str, str], school: str, year: int = 2026) -> dict:
    """The school's scorecard of ``year`` as ``headers`` see it ({} while it has none)."""
    cards = (
        await svc.client.get("/v1/scorecards", params={"year": year, "level": "school"}, headers=headers)
    ).json()
    return next((c for c in cards if c["org"] == school), {})


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
