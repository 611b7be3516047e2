"""The events the enrollment service consumes, and the handler of each."""

from baoxue.contracts.registry import ChildRegistered, ChildStatusChanged, ChildUpdated, FeedCompleted
from baoxue.events.consumer import Subscription
from baoxue.service import ServiceContext
from enrollment.children.handlers import make_batch_handlers, make_handlers
from enrollment.verification.refresh import on_feed_completed


def subscriptions(ctx: ServiceContext) -> list[Subscription]:
    handlers = make_handlers(ctx)
    # A feed becomes one ChildRegistered / ChildUpdated per child: runs of them are applied set-based.
    many = make_batch_handlers(ctx)
    return [
        Subscription(
            "registry",
            {
                ChildRegistered: handlers["snapshot"],
                ChildUpdated: handlers["snapshot"],
                ChildStatusChanged: handlers["status"],
                FeedCompleted: on_feed_completed,
            },
            batch_handlers={
                ChildRegistered: many["snapshot"],
                ChildUpdated: many["snapshot"],
                ChildStatusChanged: many["status"],
            },
        )
    ]
