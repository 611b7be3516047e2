"""The periodic sweep (ServiceSpec.background): hanging transfers, expired suspensions, unconfirmed leavers,
ended deferrals and exemptions."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from enrollment.deferrals import service as deferrals
from enrollment.settings import settings_of
from enrollment.signals import vocational
from enrollment.students import transfers

log = logging.getLogger(__name__)


async def sweep_once(ctx: ServiceContext, today: dt.date) -> dict[str, int]:
    """Run every detector for ``today`` in one transaction; re-running the same day raises nothing new."""
    async with ctx.db.transaction() as session:
        counts = {
            "transfers_hanging": await transfers.flag_hanging_transfers(
                session=session, ctx=ctx, today=today
            ),
            "suspensions_expired": await transfers.flag_expired_suspensions(
                session=session, ctx=ctx, today=today
            ),
            "vocational_unconfirmed": await vocational.flag_unconfirmed(
                session=session, ctx=ctx, today=today
            ),
            "deferrals_expired": await deferrals.publish_expired(session=session, ctx=ctx, today=today),
        }
    log.info("dropout sweep done", extra=counts)
    return counts


async def sweep_forever(ctx: ServiceContext) -> None:
    if not settings_of(ctx).sweep_enabled:
        return
    interval = settings_of(ctx).sweep_interval_seconds
    while True:
        await sweep_once(ctx, today_in_china())
        await asyncio.sleep(interval)
