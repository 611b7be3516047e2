"""The caller of a request: who, which roles, which organisation, which jurisdiction."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``org`` is the caller's own organisation code; ``scope`` is the code prefix of its jurisdiction
    (a school's own code; a town's code; the district code for the bureau and the departments).
    ``purpose`` is the purpose the caller stated for this request (``X-Access-Purpose``), needed to
    see unmasked personal data.
    """

    subject: str
    roles: frozenset[str]
    org: str
    scope: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    name: str | None = None
    purpose: str | None = None

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def covers(self, org_code: str | None) -> bool:
        """True when ``org_code`` lies inside this caller's jurisdiction (prefix test)."""
        return org_code is not None and org_code.startswith(self.scope)
