"""Which role may do what in the registry service (role codes: ``baoxue.auth.roles.ROLES``).

- ``feed:submit`` — a department's service account or clerk, for its own department only.
- ``feed:read`` — departments (their own batches), the bureau and the inspectors (all).
- ``child:read`` — list, detail and look-up, inside the caller's jurisdiction.
- ``child:read_unmasked`` — may see names and ID numbers unmasked when a purpose is stated.
- ``hukou:correct`` — the police's hukou corrections.
- ``review:read`` / ``review:decide`` — the review queue (conflicts, lapsed flags, link candidates,
  unmatched addresses). District roles only (the bureau; inspectors read): an item often concerns two
  towns (a link candidate) or no town yet (an unmatched address), and its decision merges records or
  moves a child between towns. The queue is still filtered by the caller's jurisdiction like the
  children (``registry.linkage.service``), and an item outside it answers 404 like a missing one.
"""

from baoxue.auth.roles import RolePolicy

_DEPARTMENT = {"feed:submit", "feed:read", "child:read", "calendar:read"}

POLICY = RolePolicy(
    {
        "bureau": {
            "feed:read",
            "child:read",
            "child:read_unmasked",
            "review:read",
            "review:decide",
            "calendar:read",
        },
        "inspector": {"feed:read", "child:read", "review:read", "calendar:read"},
        "dept_police": _DEPARTMENT | {"hukou:correct", "child:read_unmasked"},
        "dept_poverty": set(_DEPARTMENT),
        "dept_dpf": set(_DEPARTMENT),
        "dept_civil": set(_DEPARTMENT),
        "town": {"child:read", "child:read_unmasked"},
        "school_district": {"child:read", "child:read_unmasked"},
    }
)
