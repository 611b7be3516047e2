"""Rebuilding the children read model from the registry's stream."""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.events.envelope import stream_name
from baoxue.service import ServiceContext
from enrollment.children import repository

log = logging.getLogger(__name__)

SOURCE = "registry"


async def rebuild_read_model(*, session: AsyncSession, ctx: ServiceContext) -> dict[str, int]:
    """Empty the read model and forget which registry events were applied, then make the durable
    consumer start again from the beginning of the registry's stream.

    The rows and inbox entries are removed in the caller's transaction; the durable is deleted after
    that transaction commits (so a replayed event never meets a stale inbox row) by :func:`replay`.
    """
    removed = await repository.clear(session)
    inbox = ctx.spec.tables.events.inbox
    forgotten = await session.execute(
        delete(inbox)
        .where(inbox.c.consumer == ctx.spec.name, inbox.c.event_type.like(f"baoxue.{SOURCE}.%"))
        .returning(inbox.c.event_id)
    )
    return {"children_removed": removed, "inbox_entries_forgotten": len(forgotten.all())}


async def replay(ctx: ServiceContext) -> None:
    """Delete the durable consumer on the registry's stream and make the runner re-bind: it recreates
    the durable with DeliverPolicy.ALL, so every retained registry event is delivered again."""
    durable = f"{ctx.spec.name}__from__{SOURCE}"
    with contextlib.suppress(Exception):
        await ctx.bus.js.delete_consumer(stream_name(ctx.bus.namespace, SOURCE), durable)
    ctx.bus.generation += 1  # the consumer loop re-binds (and recreates the durable) on a new generation
    log.info("children read model replay started", extra={"durable": durable})
