"""The roles of Baoxue's users and the mechanism that maps them to a service's permissions.

Which role may do what is each service's decision (its ``permissions.py``); the role codes and their
labels are shared reference data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ROLES: dict[str, tuple[str, str]] = {
    "bureau": ("District Education & Sports Bureau", "区教体局"),
    "dept_police": ("Public security (household registration)", "区公安分局"),
    "dept_poverty": ("Poverty alleviation office", "区扶贫办"),
    "dept_dpf": ("Disabled persons' federation", "区残联"),
    "dept_civil": ("Civil affairs", "区民政局"),
    "town": ("Town / street office", "镇街"),
    "school_district": ("School district", "学区"),
    "school": ("School (principal and staff)", "学校"),
    "teacher": ("Teacher", "教师"),
    "justice": ("Justice bureau", "区司法局"),
    "hrss": ("Human resources and social security bureau (child-labour referrals)", "区人社局"),
    "market": ("Market regulation bureau (venue referrals)", "区市场监管局"),
    "culture": ("Culture and tourism bureau (venue referrals)", "区文旅局"),
    "inspector": ("Government inspection office (read-only supervision)", "区政府督查室"),
    "provincial_platform": ("Provincial student registry platform (system)", "省学籍平台"),
    "service": ("Baoxue service account (system)", "系统服务账号"),
}


class RolePolicy:
    """A service's permissions per role; a principal holds the union over its roles."""

    def __init__(self, grants: Mapping[str, Iterable[str]]) -> None:
        unknown = set(grants) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles in policy: {sorted(unknown)}")
        self.grants = {role: frozenset(perms) for role, perms in grants.items()}

    def permissions_of(self, roles: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for role in roles:
            out |= self.grants.get(role, frozenset())
        return frozenset(out)

    def all_permissions(self) -> frozenset[str]:
        return frozenset().union(*self.grants.values()) if self.grants else frozenset()
