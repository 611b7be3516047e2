"""Which role may do what in the notify service (role codes: ``baoxue.auth.roles.ROLES``)."""

from baoxue.auth.roles import RolePolicy

_EVERYONE = {
    "calendar:read",
    "deadline:read",
    "inbox:read",
    "document:read",
    "bulletin:read",
    "blacklist:read",
}
_DEPARTMENT = _EVERYONE | {"referral:handle"}

POLICY = RolePolicy(
    {
        "bureau": _EVERYONE
        | {
            "calendar:admin",
            "escalation:read",
            "escalation:act",
            "document:issue",
            "webhook:admin",
            "bulletin:publish",
            "blacklist:write",
            "referral:handle",
            "scorecard:read",
        },
        "inspector": _EVERYONE | {"escalation:read", "scorecard:read"},
        "town": _EVERYONE
        | {"escalation:read", "escalation:act", "document:issue", "blacklist:write", "scorecard:read"},
        "justice": _EVERYONE | {"escalation:read", "escalation:act", "document:issue", "referral:handle"},
        "school_district": _EVERYONE | {"escalation:read", "document:issue", "scorecard:read"},
        "school": _EVERYONE | {"escalation:read", "document:issue", "acknowledgement:record"},
        "teacher": {"calendar:read", "inbox:read", "document:read", "acknowledgement:record"},
        "dept_police": _DEPARTMENT | {"document:issue"},
        "dept_poverty": _DEPARTMENT,
        "dept_dpf": _DEPARTMENT,
        "dept_civil": _DEPARTMENT,
        "service": {"calendar:read", "deadline:read", "document:read"},
    }
)
