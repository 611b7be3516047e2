"""Which role may do what in the casework service (role codes: ``baoxue.auth.roles.ROLES``).

case:read — see cases in the jurisdiction; case:open — open a case by hand; case:write — transitions,
edits, reports, attendance; case:persuade — persuasion log and care plans; visit:* — home visits;
roster:write — a school's semester roster; census:* and plan:* — special-needs census and support plans.
"""

from baoxue.auth.roles import RolePolicy

_SUPERVISE = {"case:read", "visit:read", "census:read", "plan:read"}

POLICY = RolePolicy(
    {
        "bureau": _SUPERVISE,
        "inspector": _SUPERVISE,
        "town": _SUPERVISE,
        "school_district": _SUPERVISE | {"case:open", "case:write", "case:persuade"},
        "school": _SUPERVISE
        | {
            "case:open",
            "case:write",
            "case:persuade",
            "visit:write",
            "roster:write",
            "census:write",
            "plan:write",
        },
        "teacher": {"case:read", "case:persuade", "visit:read", "visit:write", "plan:read", "plan:write"},
    }
)
