"""Events published by the notify service (subjects ``<namespace>.notify.<aggregate>.<event>``)."""

from __future__ import annotations

from typing import ClassVar

from baoxue.events.envelope import EventData


class NotifyEvent(EventData):
    """Base of the notify service's events."""

    service: ClassVar[str] = "notify"
