"""Events published by the enrollment service (subjects ``<namespace>.enrollment.<aggregate>.<event>``)."""

from __future__ import annotations

from typing import ClassVar

from baoxue.events.envelope import EventData


class EnrollmentEvent(EventData):
    """Base of the enrollment service's events."""

    service: ClassVar[str] = "enrollment"
