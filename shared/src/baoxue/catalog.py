"""Discovery of the installed services (entry point group ``baoxue.services``).

The library never imports a service by name; the command line and the test plugin find them here.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from baoxue.service import ServiceSpec

SERVICE_ORDER = ("registry", "enrollment", "casework", "notify")
DEFAULT_PORTS = {"registry": 8101, "enrollment": 8102, "casework": 8103, "notify": 8104}


def load_service(name: str) -> ServiceSpec:
    """The :class:`ServiceSpec` of the installed service ``name``."""
    for ep in entry_points(group="baoxue.services"):
        if ep.name == name:
            spec: ServiceSpec = ep.load()
            return spec
    raise LookupError(f"service {name!r} is not installed")


def installed_services() -> list[str]:
    names = {ep.name for ep in entry_points(group="baoxue.services")}
    return [n for n in SERVICE_ORDER if n in names] + sorted(names - set(SERVICE_ORDER))
