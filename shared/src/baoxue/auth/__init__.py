"""Authentication (JWT bearer) and authorisation (role permissions × jurisdiction)."""

from baoxue.auth.jurisdiction import ensure_within, within_jurisdiction
from baoxue.auth.principal import Principal
from baoxue.auth.roles import ROLES, RolePolicy

__all__ = ["ROLES", "Principal", "RolePolicy", "ensure_within", "within_jurisdiction"]
