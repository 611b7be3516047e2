"""The comparator: the same envelope bytes sent with ``js.publish_async`` (with ``Nats-Msg-Id``) and a raw
durable pull consumer acking them: the most the same NATS server and client library move per second."""

from __future__ import annotations

import asyncio
import secrets
import time

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from b5.path import Outcome, wait_until
from baoxue.events.bus import EventBus
from baoxue.events.envelope import Envelope, EventData, stream_name


def raw_messages(events: list[EventData]) -> list[tuple[str, str, bytes]]:
    """(event id, relative subject, envelope bytes): the same bytes the relay would send."""
    out = []
    for e in events:
        env = Envelope.wrap(e, subject=getattr(e, "child_id", "x"), sequence=1, trace_id=None)
        out.append((env.id, e.relative_subject(), env.model_dump_json().encode()))
    return out


async def raw_path(
    nats_url: str, messages: list[tuple[str, str, bytes]], *, pace: float | None = None, batch: int = 100
) -> Outcome:
    """publish_async every message (paced or flat out); a raw pull consumer acks them."""
    namespace = f"bench{secrets.token_hex(3)}"
    bus = EventBus(nats_url, namespace=namespace, client_name="bench-raw")
    await bus.connect()
    await bus.ensure_streams(("registry",))
    stream = stream_name(namespace, "registry")
    durable = "raw"
    await bus.js.add_consumer(
        stream,
        config=ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=max(1000, batch * 4),
        ),
    )
    psub = await bus.js.pull_subscribe_bind(durable=durable, stream=stream)
    sent_at: dict[str, float] = {}
    received_at: dict[str, float] = {}

    async def consume() -> None:
        while len(received_at) < len(messages):
            try:
                msgs = await psub.fetch(batch, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):
                continue
            now = time.perf_counter()
            for msg in msgs:
                received_at.setdefault((msg.headers or {}).get("Nats-Msg-Id", ""), now)
                await msg.ack()

    consumer = asyncio.create_task(consume())
    try:
        start = time.perf_counter()
        futures = []
        for i, (event_id, subject, data) in enumerate(messages):
            if pace:
                delay = start + i / pace - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent_at[event_id] = time.perf_counter()
            futures.append(
                await bus.js.publish_async(
                    f"{namespace}.{subject}", data, headers={"Nats-Msg-Id": event_id}, wait_stall=5.0
                )
            )
        await asyncio.gather(*futures)
        await wait_until(lambda: len(received_at), len(messages))
        seconds = time.perf_counter() - start
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await bus.delete_streams(("registry",))
        await bus.close()
    latencies = [(received_at[k] - t) * 1000 for k, t in sent_at.items() if k in received_at]
    lost = sum(1 for k in sent_at if k not in received_at)
    return Outcome(seconds, lost=lost, latencies_ms=latencies)
