"""Events published by the registry service (subjects ``<namespace>.registry.<aggregate>.<event>``)."""

from __future__ import annotations

from typing import ClassVar

from baoxue.events.envelope import EventData


class RegistryEvent(EventData):
    """Base of the registry service's events."""

    service: ClassVar[str] = "registry"
