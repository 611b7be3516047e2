"""Which role may do what in the notify service (role codes: ``baoxue.auth.roles.ROLES``)."""

from baoxue.auth.roles import RolePolicy

_EVERYONE = {
    "calendar:read",
    "deadline:read",
    "inbox:read",
    "document:read",
    "bulletin:read",
    "blacklist:read",
    "referral:read",
}
_DEPARTMENT = _EVERYONE | {"referral:handle"}
_REFERRAL_RECEIVER = {"inbox:read", "referral:read", "referral:handle"}
"""A bureau that takes part only by receiving referrals (child labour → HRSS; venues → market regulation
and culture): its inbox (list, read, acknowledge), the referrals addressed to it (list, receipt, outcome),
nothing else."""

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
        # referral:handle: the return of a child whose deferral or exemption ended (deferral_return).
        "school_district": _EVERYONE
        | {"escalation:read", "document:issue", "scorecard:read", "referral:handle"},
        "school": _EVERYONE | {"escalation:read", "document:issue", "acknowledgement:record"},
        "teacher": {"calendar:read", "inbox:read", "document:read", "acknowledgement:record"},
        "dept_police": _DEPARTMENT | {"document:issue"},
        "dept_poverty": _DEPARTMENT,
        "dept_dpf": _DEPARTMENT,
        "dept_civil": _DEPARTMENT,
        "hrss": _REFERRAL_RECEIVER,
        "market": _REFERRAL_RECEIVER,
        "culture": _REFERRAL_RECEIVER,
        "service": {"calendar:read", "deadline:read", "document:read"},
    }
)
