"""Organisation reference data: the district's towns, school districts, schools, departments, villages.

Every service loads the same versioned directory (``default_directory()``) so that jurisdiction checks
("is this school inside my town?") are one string-prefix test on organisation codes.
"""

from baoxue.orgs.directory import (
    AddressMatch,
    DepartmentRole,
    Organisation,
    OrgDirectory,
    OrgKind,
    SchoolType,
    Village,
    default_directory,
)

__all__ = [
    "AddressMatch",
    "DepartmentRole",
    "OrgDirectory",
    "OrgKind",
    "Organisation",
    "SchoolType",
    "Village",
    "default_directory",
]
