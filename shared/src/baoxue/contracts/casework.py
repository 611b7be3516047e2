"""Events published by the casework service (subjects ``<namespace>.casework.<aggregate>.<event>``)."""

from __future__ import annotations

from typing import ClassVar

from baoxue.events.envelope import EventData


class CaseworkEvent(EventData):
    """Base of the casework service's events."""

    service: ClassVar[str] = "casework"
