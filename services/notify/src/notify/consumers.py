"""The events the notify service consumes, and the handler of each.

Several domains react to the same event (a confirmed case opens a report deadline, starts the ladder and
counts for the scorecards): their handlers run one after the other in the event's single transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.events.consumer import ReceivedEvent, Subscription
from baoxue.service import ServiceContext
from notify.blacklist.handlers import make_handlers as blacklist_handlers
from notify.bulletins.handlers import make_handlers as bulletin_handlers
from notify.deadlines.handlers import Handler
from notify.deadlines.handlers import make_handlers as deadline_handlers
from notify.referrals.handlers import make_handlers as referral_handlers


def _chain(handlers: Sequence[Handler]) -> Handler:
    if len(handlers) == 1:
        return handlers[0]

    async def run_all(session: AsyncSession, event: ReceivedEvent[Any]) -> None:
        for handler in handlers:
            await handler(session, event)

    return run_all


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    merged: dict[str, dict[type, list[Handler]]] = {}
    for group in (
        deadline_handlers(ctx),
        bulletin_handlers(ctx),
        blacklist_handlers(ctx),
        referral_handlers(ctx),
    ):
        for source, handlers in group.items():
            for contract, handler in handlers.items():
                merged.setdefault(source, {}).setdefault(contract, []).append(handler)
    return [
        Subscription(source, {contract: _chain(chain) for contract, chain in handlers.items()})
        for source, handlers in sorted(merged.items())
    ]
