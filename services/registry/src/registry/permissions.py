"""Which role may do what in the registry service (role codes: ``baoxue.auth.roles.ROLES``)."""

from baoxue.auth.roles import RolePolicy

POLICY = RolePolicy(
    {
        "bureau": set(),
        "inspector": set(),
    }
)
