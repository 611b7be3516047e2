"""The events the enrollment service consumes, and the handler of each."""

from baoxue.events.consumer import Subscription
from baoxue.service import ServiceContext


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    return []
