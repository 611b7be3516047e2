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
# case:refer — act on a case of the caller's jurisdiction towards others: a referral sent by hand, a check of
# its whereabouts against the blacklist (a hit alerts the town and the bureau). Writes: the inspection
# office, which only reads, has none.

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
            "case:refer",
            "referral:handle",
            "scorecard:read",
        },
        "inspector": _EVERYONE | {"escalation:read", "scorecard:read"},
        "town": _EVERYONE
        | {
            "escalation:read",
            "escalation:act",
            "document:issue",
            "blacklist:write",
            "case:refer",
            "scorecard:read",
        },
        "justice": _EVERYONE
        | {"escalation:read", "escalation:act", "document:issue", "case:refer", "referral:handle"},
        # referral:handle: the return of a child whose deferral or exemption ended (deferral_return).
        "school_district": _EVERYONE
        | {"escalation:read", "document:issue", "case:refer", "scorecard:read", "referral:handle"},
        "school": _EVERYONE | {"escalation:read", "document:issue", "case:refer", "acknowledgement:record"},
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
