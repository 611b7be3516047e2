"""The events the notify service consumes, and the handler of each."""

from __future__ import annotations

from baoxue.events.consumer import Subscription
from baoxue.service import ServiceContext
from notify.deadlines.handlers import Handler
from notify.deadlines.handlers import make_handlers as deadline_handlers


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    merged: dict[str, dict[type, Handler]] = {}
    for group in (deadline_handlers(ctx),):
        for source, handlers in group.items():
            merged.setdefault(source, {}).update(handlers)
    return [Subscription(source, handlers) for source, handlers in sorted(merged.items())]
