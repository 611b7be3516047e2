"""The NATS connection of one service, and stream provisioning."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, ServerError, ServiceUnavailableError

from baoxue.events.envelope import SERVICES, stream_name, stream_subjects

log = logging.getLogger(__name__)

CLOSE_DRAIN_SECONDS = 5.0
"""How long closing waits for the connection to drain before it closes it regardless."""
STREAM_CREATE_DELAYS = (0.2, 0.5, 1.0)
"""The pauses before each retry of a stream's creation that the server failed on its side (a 500 or
503: seen once in CI from a shared server, err_code 10049 "error creating store for stream", for a
stream of a fresh name). A configuration the server refuses (400) is not retried."""


async def all_streams(js: JetStreamContext) -> list[Any]:
    """Every stream of the account. The server lists them a page (256) at a time, and a shared server can
    hold more than that: reading one page can miss the very streams looked for."""
    infos: list[Any] = []
    while page := await js.streams_info(offset=len(infos)):
        infos += page
    return infos


class EventBus:
    """A NATS connection that never gives up reconnecting, with a JetStream context.

    ``generation`` increases on every reconnect so long-lived pull consumers can re-bind: pull
    subscriptions have been seen to stall silently after a server restart (nats.py #504).
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        client_name: str,
        replicas: int = 1,
        duplicate_window_seconds: float = 600.0,
        max_age_days: float = 30.0,
    ) -> None:
        self.url = url
        self.namespace = namespace
        self.client_name = client_name
        self.replicas = replicas
        self.duplicate_window_seconds = duplicate_window_seconds
        self.max_age_days = max_age_days
        self.nc: Client | None = None
        self._js: JetStreamContext | None = None
        self.generation = 0
        self.reconnected = asyncio.Event()
        self._closing = False

    @property
    def js(self) -> JetStreamContext:
        """The connection's one JetStream context.

        One per connection, not one per use: each context subscribes to a reply inbox of its own on its
        first ``publish_async`` and never unsubscribes, so a context per relay round leaked one
        subscription per round (client and server side) and one more SUB per round trip.
        """
        if self.nc is None:
            raise RuntimeError("EventBus.connect() has not been called")
        if self._js is None:
            self._js = self.nc.jetstream(timeout=5)
        return self._js

    @property
    def is_connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self) -> None:
        """Connect; once connected, reconnects never give up. Raises if the server is down right now."""

        async def on_reconnect() -> None:
            self.generation += 1
            self.reconnected.set()
            log.info("nats reconnected", extra={"generation": self.generation})

        async def on_disconnect() -> None:
            if not self._closing:
                log.warning("nats disconnected")

        async def on_error(exc: Exception) -> None:
            log.warning("nats error", extra={"error_type": type(exc).__name__})

        self._js = None
        self._closing = False
        self.nc = await nats.connect(
            # A cluster may be given as a comma-separated list of seed URLs.
            [u.strip() for u in self.url.split(",") if u.strip()],
            name=self.client_name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
            allow_reconnect=True,
            reconnected_cb=on_reconnect,
            disconnected_cb=on_disconnect,
            error_cb=on_error,
            pending_size=64 * 1024 * 1024,
        )

    async def close(self) -> None:
        """Drain (what was published is flushed) and close. Stop the consumers first: a subscription
        still open when the drain starts is waited for."""
        if self.nc is not None and not self.nc.is_closed:
            self._closing = True
            try:
                await asyncio.wait_for(self.nc.drain(), timeout=CLOSE_DRAIN_SECONDS)
            except Exception as exc:
                log.warning("nats drain did not complete; closing", extra={"error_type": type(exc).__name__})
                await self.nc.close()

    def stream_config(self, service: str) -> StreamConfig:
        return StreamConfig(
            name=stream_name(self.namespace, service),
            subjects=stream_subjects(self.namespace, service),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age_days * 86400,
            duplicate_window=self.duplicate_window_seconds,
            num_replicas=self.replicas,
        )

    async def ensure_streams(self, services: tuple[str, ...] = SERVICES) -> None:
        """Create or update each service's stream (idempotent; every service calls it at start-up)."""
        for service in services:
            await self._ensure_stream(self.stream_config(service))

    async def _ensure_stream(self, config: StreamConfig) -> None:
        jsm = self.js
        for delay in (*STREAM_CREATE_DELAYS, None):
            try:
                try:
                    await jsm.add_stream(config)
                except BadRequestError:
                    await jsm.update_stream(config)
                return
            except (ServerError, ServiceUnavailableError) as exc:
                if delay is None:
                    raise
                log.warning(
                    "stream not created; retrying",
                    extra={"stream": config.name, "err_code": exc.err_code, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)

    async def delete_streams(self, services: tuple[str, ...] = SERVICES) -> None:
        """Remove this namespace's streams (tests clean up after themselves)."""
        for service in services:
            try:
                await self.js.delete_stream(stream_name(self.namespace, service))
            except Exception as exc:
                log.debug("stream not deleted", extra={"error_type": type(exc).__name__})

    async def stream_info(self, service: str) -> Any:
        return await self.js.stream_info(stream_name(self.namespace, service))
