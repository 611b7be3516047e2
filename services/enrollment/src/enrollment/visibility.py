"""404 for objects outside the caller's jurisdiction, indistinguishable from a missing object.

The library's ``ensure_within`` answers the generic ``not_found``; this service's missing objects answer
specific codes (``student_not_found`` …), so a foreign object must answer the very same problem or the
difference would tell a caller that the object exists elsewhere.
"""

from __future__ import annotations

from baoxue.auth.principal import Principal
from baoxue.errors import NotFound

NOT_FOUND_CODES = {
    "student record": "student_not_found",
    "transfer": "transfer_not_found",
    "verification task": "task_not_found",
    "child": "child_not_found",
    "vocational leaver": "leaver_not_found",
    "placement": "placement_not_found",
    "school": "not_found",
}


def not_found(resource: str) -> NotFound:
    return NotFound(f"No such {resource}.", code=NOT_FOUND_CODES[resource])


def ensure_visible(principal: Principal, *org_codes: str | None, resource: str) -> None:
    """Raise the resource's not-found problem unless one of ``org_codes`` is inside the jurisdiction."""
    if not any(principal.covers(code) for code in org_codes):
        raise not_found(resource)
