"""Incremental updates: a department feed applied after a run makes the campaign run again, and so does
a registry status change that can change a child's outcome (ChildStatusChanged to or from deceased,
moved out or duplicate: a hukou clean-up, also outside any feed).

The registry publishes FeedCompleted after the feed's child events on the same stream, so when the
handler sees it the read model already holds the feed; a status change flags in the transaction that
applies it to the read model. The handlers only flag the campaigns (:func:`request_refresh`); the
refresher (a background loop) starts their runs as ordinary jobs, one at a time per campaign.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.principal import Principal
from baoxue.contracts.registry import FeedCompleted
from baoxue.db import utcnow
from baoxue.errors import Conflict
from baoxue.events.consumer import ReceivedEvent
from baoxue.service import ServiceContext
from enrollment.settings import settings_of
from enrollment.verification import classify, service
from enrollment.verification.models import Campaign

log = logging.getLogger(__name__)


async def request_refresh(session: AsyncSession) -> None:
    """Flag every campaign that has run and is not frozen for a re-run (one statement)."""
    await session.execute(
        update(Campaign)
        .where(col(Campaign.runs) > 0, col(Campaign.state) != "frozen")
        .values(refresh_requested_at=utcnow())
    )


async def on_feed_completed(session: AsyncSession, event: ReceivedEvent[FeedCompleted]) -> None:
    """Flag every campaign that has run and is not frozen for a re-run."""
    if event.data.accepted == 0:
        return
    await request_refresh(session)


def reclassifies(status: str, previous_status: str) -> bool:
    """Whether a registry status change can change a child's outcome: to or from a status the
    classification excludes by (deceased, moved out, duplicate). Active and missing classify alike, and a
    merge announced again (duplicate to duplicate, another ``merged_into``) changes no outcome."""
    excluding = classify.EXCLUDED_BY_STATUS
    return status != previous_status and (status in excluding or previous_status in excluding)


def system_principal(ctx: ServiceContext, district_code: str) -> Principal:
    return Principal(
        subject=f"system:{ctx.spec.name}",
        roles=frozenset({"service"}),
        org=district_code,
        scope=district_code,
    )


async def refresh_once(ctx: ServiceContext) -> list[str]:
    """Start a run for each flagged campaign (the flag is cleared when its run starts); returns job ids."""
    async with ctx.db.transaction() as session:
        rows = (
            await session.execute(
                select(col(Campaign.id), col(Campaign.district_code)).where(
                    col(Campaign.refresh_requested_at).is_not(None)
                )
            )
        ).all()
    jobs = []
    for campaign_id, district in rows:
        try:
            jobs.append(
                await service.start_run(
                    ctx=ctx,
                    principal=system_principal(ctx, district),
                    campaign_id=campaign_id,
                    clear_refresh=True,
                )
            )
        except Conflict:
            continue  # a run is going; the flag stays and the next pass starts another
    return jobs


async def refresh_forever(ctx: ServiceContext) -> None:
    interval = settings_of(ctx).campaign_refresh_seconds
    while True:
        jobs = await refresh_once(ctx)
        if jobs:
            log.info("campaign refresh started", extra={"jobs": len(jobs)})
        await asyncio.sleep(interval)
