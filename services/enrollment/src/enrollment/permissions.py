"""Which role may do what in the enrollment service (role codes: ``baoxue.auth.roles.ROLES``)."""

from baoxue.auth.roles import RolePolicy

_READ = {"student:read", "campaign:read", "task:read", "deferral:read", "placement:read"}

POLICY = RolePolicy(
    {
        "bureau": _READ
        | {
            "student:write",
            "student:unmask",
            "transfer:approve",
            "annotation:read",
            "annotation:write",
            "deferral:file",
            "deferral:decide",
            "placement:write",
            "campaign:manage",
            "task:resolve",
            "task:confirm",
            "readmodel:rebuild",
            "sync:run",
            "signal:report",
        },
        "school": _READ
        | {
            "student:write",
            "transfer:approve",
            "annotation:read",
            "deferral:file",
            "placement:write",
            "task:confirm",
            "signal:report",
        },
        "school_district": _READ | {"transfer:approve", "deferral:file", "task:resolve", "task:confirm"},
        "town": _READ,
        "dept_dpf": {
            "student:read",
            "annotation:read",
            "annotation:write",
            "placement:read",
            "placement:write",
        },
        "inspector": _READ,
        "provincial_platform": {"task:confirm"},
    }
)
