"""Event contracts: the pydantic model of every event each service publishes, one module per service.

A consumer depends on a publisher only through these models. Adding a field is backwards compatible
only if it has a default; anything else is a new ``version`` (a new event type) published side by side.
``all_contracts()`` feeds the AsyncAPI document.
"""

from __future__ import annotations

import importlib

from baoxue.events.envelope import SERVICES, EventData


def all_contracts() -> list[type[EventData]]:
    """Every event contract defined in the contract modules, ordered by type."""
    found: dict[str, type[EventData]] = {}
    for service in SERVICES:
        module = importlib.import_module(f"baoxue.contracts.{service}")
        for value in vars(module).values():
            concrete = isinstance(value, type) and issubclass(value, EventData) and "event" in vars(value)
            if concrete and getattr(value, "service", None) == service:
                found[value.event_type()] = value
    return [found[k] for k in sorted(found)]
