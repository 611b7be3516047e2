"""The organisation directory: versioned reference data of who is who in the district.

Organisation codes are hierarchical and fixed-width, so "is X inside my jurisdiction" is a string-prefix
test on codes:

========================  ==========================  =====================================
kind                      code                        example
========================  ==========================  =====================================
district                  6 digits (county code)      ``370406`` 山亭区
department                county + ``D`` + 2 digits   ``370406D02`` 区公安分局 (district-wide)
town / street office      county + 3 digits           ``370406101`` 店子镇
school district (学区)     town + 2 digits             ``37040610101`` 店子镇学区
school                    school district + 3 digits  ``37040610101001`` 山亭区店子镇中心小学
village / community       town + 3 digits             ``370406101201`` (not an organisation)
========================  ==========================  =====================================

The letter in department codes keeps them out of every town's prefix space; their ``jurisdiction``
field is the district. District-level schools live under the pseudo-town ``370406900`` 区直. Village
codes are ``0xx`` for communities (社区) and ``2xx`` for villages (村), so a village code is never
mistaken for a school district's prefix (school districts end in ``01``).

The directory is immutable: :meth:`OrgDirectory.load` reads one JSON file and
:func:`default_directory` caches the shipped Shanting file for the life of the process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

OrgKind = Literal["district", "department", "town", "school_district", "school"]
SchoolType = Literal["primary", "junior", "nine_year", "special_education", "vocational"]
DepartmentRole = Literal[
    "bureau",
    "dept_police",
    "dept_poverty",
    "dept_dpf",
    "dept_civil",
    "justice",
    "inspector",
    "hrss",
    "market",
    "culture",
    "finance",
]
MatchConfidence = Literal["exact", "town_only", "none"]

DEFAULT_DATA_FILE = Path(__file__).with_name("data") / "shanting-370406.json"
DISTRICT_DIRECT_TOWN_SUFFIX = "900"
"""Statistical town codes 900-999 are unused by the NBS scheme; ``<county>900`` is the pseudo-town 区直."""


class Organisation(BaseModel):
    """One organisation: the district, a department, a town, a school district or a school."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    kind: OrgKind
    name_zh: str
    name_en: str
    parent: str | None
    jurisdiction: str
    """Code prefix of everything this organisation may see (the district for departments)."""
    school_type: SchoolType | None = None
    department_role: DepartmentRole | None = None
    aliases: tuple[str, ...] = ()
    """Other names in use: abbreviations (店子 for 店子镇), full official names of departments."""
    synthetic: bool = False
    """True where the name or code is synthetic demo data, not verified against an official source."""


class Village(BaseModel):
    """A village (村) or urban community (社区): an address unit, answered for by one school district."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name_zh: str
    town: str
    served_by: str
    """Code of the school district responsible for children with hukou in this village."""
    primary_school: str | None = None
    """Code of the primary school that normally takes this village's children."""
    synthetic: bool = True


@dataclass(frozen=True, slots=True)
class AddressMatch:
    """Where a free-text address points inside the district.

    ``exact``: the village was recognised (its town is then known too); ``town_only``: only the town was
    recognised; ``none``: nothing in the district was recognised.
    """

    town_code: str | None
    village_code: str | None
    confidence: MatchConfidence


NO_MATCH = AddressMatch(None, None, "none")


def _alternation(words: Iterable[str]) -> re.Pattern[str]:
    """One compiled regex matching any of ``words``, longest first so a longer name wins at a position."""
    unique = sorted(set(words), key=lambda w: (-len(w), w))
    return re.compile("|".join(re.escape(w) for w in unique))


def _village_stem(name: str) -> str | None:
    """The name without its 村/社区 suffix, if at least two characters remain."""
    for suffix in ("社区", "居委会", "村委会", "村"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem if len(stem) >= 2 else None
    return None


class OrgDirectory:
    """Immutable, indexed view of one directory file. Build it with :meth:`load`."""

    def __init__(self, data: dict[str, Any]) -> None:
        """Index ``data`` (the parsed JSON document). Raises ``ValueError`` on an inconsistent document."""
        self.version: str = str(data["version"])
        self.district: dict[str, Any] = dict(data["district"])
        self.district_code: str = str(self.district["code"])
        self.sources: tuple[dict[str, Any], ...] = tuple(data.get("sources", ()))
        orgs = [Organisation.model_validate(o) for o in data["organisations"]]
        villages = [Village.model_validate(v) for v in data["villages"]]
        self._orgs: dict[str, Organisation] = {}
        for org in orgs:
            if org.code in self._orgs:
                raise ValueError(f"duplicate organisation code {org.code}")
            self._orgs[org.code] = org
        self._villages: dict[str, Village] = {}
        for village in villages:
            if village.code in self._villages or village.code in self._orgs:
                raise ValueError(f"duplicate village code {village.code}")
            self._villages[village.code] = village
        self._check_references()
        self._school_district_by_town: dict[str, str] = {}
        for org in orgs:
            if org.kind == "school_district" and org.parent is not None:
                self._school_district_by_town.setdefault(org.parent, org.code)
        self._build_address_index()

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: Path | None = None) -> OrgDirectory:
        """Read a directory JSON file (default: the shipped Shanting file) and index it."""
        file = path if path is not None else DEFAULT_DATA_FILE
        with file.open(encoding="utf-8") as fh:
            return cls(json.load(fh))

    def _check_references(self) -> None:
        for org in self._orgs.values():
            if org.parent is not None and org.parent not in self._orgs:
                raise ValueError(f"{org.code}: unknown parent {org.parent}")
            if org.kind == "school" and org.school_type is None:
                raise ValueError(f"{org.code}: a school needs a school_type")
            if org.kind == "department" and org.department_role is None:
                raise ValueError(f"{org.code}: a department needs a department_role")
        for village in self._villages.values():
            for ref, kind in ((village.town, "town"), (village.served_by, "school_district")):
                target = self._orgs.get(ref)
                if target is None or target.kind != kind:
                    raise ValueError(f"village {village.code}: {ref} is not a {kind}")

    # ------------------------------------------------------------------ lookups

    def __len__(self) -> int:
        return len(self._orgs)

    def __iter__(self) -> Iterator[Organisation]:
        return iter(self._orgs.values())

    def get(self, code: str) -> Organisation | None:
        """The organisation with this code, or None."""
        return self._orgs.get(code)

    def village(self, code: str) -> Village | None:
        """The village or community with this code, or None."""
        return self._villages.get(code)

    def villages(self, town_code: str | None = None) -> list[Village]:
        """All villages, or those of one town, in code order."""
        return [v for v in self._villages.values() if town_code is None or v.town == town_code]

    def by_role(self, role: DepartmentRole) -> Organisation:
        """The department with this role (``bureau``, ``dept_police`` ...). Raises ``KeyError`` if absent."""
        for org in self._orgs.values():
            if org.department_role == role:
                return org
        raise KeyError(role)

    def departments(self) -> list[Organisation]:
        """District-level departments, in code order."""
        return [o for o in self._orgs.values() if o.kind == "department"]

    def towns(self, include_district_direct: bool = False) -> list[Organisation]:
        """The towns and street offices; the pseudo-town 区直 only if asked for."""
        return [
            o
            for o in self._orgs.values()
            if o.kind == "town" and (include_district_direct or not self.is_district_direct(o.code))
        ]

    def school_districts(self) -> list[Organisation]:
        """All school districts (学区), including the district-direct one."""
        return [o for o in self._orgs.values() if o.kind == "school_district"]

    def schools(self, kind: SchoolType | None = None, within: str | None = None) -> list[Organisation]:
        """Schools, optionally only those of one ``school_type`` and inside scope ``within`` (is_within)."""
        return [
            o
            for o in self._orgs.values()
            if o.kind == "school"
            and (kind is None or o.school_type == kind)
            and (within is None or self.is_within(o.code, within))
        ]

    def is_district_direct(self, code: str) -> bool:
        """True for the pseudo-town 区直 and everything under it."""
        return code.startswith(self.district_code + DISTRICT_DIRECT_TOWN_SUFFIX)

    # ------------------------------------------------------------------ hierarchy

    def jurisdiction_of(self, code: str) -> str:
        """The code prefix an organisation's users may see.

        The code itself for towns, school districts and schools; the district code for the district and
        every department (the bureau included). Raises ``KeyError`` for an unknown code.
        """
        return self._orgs[code].jurisdiction

    def is_within(self, code: str, scope: str) -> bool:
        """Whether organisation or village ``code`` lies inside ``scope``.

        ``scope`` may be any organisation code (it is first widened to that organisation's jurisdiction,
        so a department's scope is the whole district) or a bare code prefix. A village is inside its
        town, the school district that serves it, and everything above.
        """
        org = self._orgs.get(scope)
        prefix = org.jurisdiction if org is not None else scope
        village = self._villages.get(code)
        if village is not None:
            return village.town.startswith(prefix) or village.served_by.startswith(prefix)
        return code.startswith(prefix)

    def parent_chain(self, code: str) -> list[Organisation]:
        """The organisation itself followed by its ancestors up to the district.

        For a village code the chain starts at its town. Raises ``KeyError`` for an unknown code.
        """
        village = self._villages.get(code)
        current: str | None = village.town if village is not None else code
        chain: list[Organisation] = []
        while current is not None:
            org = self._orgs[current]
            chain.append(org)
            current = org.parent
            if len(chain) > 16:
                raise ValueError(f"parent cycle at {code}")
        return chain

    def town_of(self, code: str) -> str | None:
        """The town (or pseudo-town) code an organisation or village belongs to; None above town level."""
        village = self._villages.get(code)
        if village is not None:
            return village.town
        if len(code) < 9 or not code[:9].isdigit():
            return None
        town = self._orgs.get(code[:9])
        return town.code if town is not None and town.kind == "town" else None

    def school_district_for(
        self, town_code: str | None = None, village_code: str | None = None
    ) -> Organisation | None:
        """The school district that answers for a village (preferred) or a town; None if unknown."""
        if village_code is not None:
            village = self._villages.get(village_code)
            if village is not None:
                return self._orgs[village.served_by]
            if town_code is None:
                town_code = self.town_of(village_code)
        if town_code is None:
            return None
        code = self._school_district_by_town.get(town_code)
        return self._orgs[code] if code is not None else None

    # ------------------------------------------------------------------ addresses

    def _build_address_index(self) -> None:
        town_names: dict[str, str] = {}
        for town in self.towns():
            for name in (town.name_zh, *town.aliases):
                town_names[name] = town.code
        self._town_by_name = town_names
        self._town_re = _alternation(town_names)
        # Per town: full names and stems of its villages. District-wide: full names only, and only
        # names that are unique in the district (a stem alone is too weak without a town).
        self._village_by_town_name: dict[str, dict[str, str]] = {}
        self._village_re_by_town: dict[str, re.Pattern[str]] = {}
        full_names: dict[str, list[str]] = {}
        for village in self._villages.values():
            names = self._village_by_town_name.setdefault(village.town, {})
            names[village.name_zh] = village.code
            stem = _village_stem(village.name_zh)
            if stem is not None:
                names.setdefault(stem, village.code)
            full_names.setdefault(village.name_zh, []).append(village.code)
        for town_code, names in self._village_by_town_name.items():
            self._village_re_by_town[town_code] = _alternation(names)
        self._village_by_name = {n: codes[0] for n, codes in full_names.items() if len(codes) == 1}
        self._village_re = _alternation(self._village_by_name)
        prefixes = [str(p) for p in self.district.get("address_prefixes", ())]
        self._prefix_re = re.compile("".join(f"(?:{re.escape(p)})?" for p in prefixes)) if prefixes else None

    def match_address(self, text: str) -> AddressMatch:
        """Find the town and village named in free Chinese address text.

        Understands full names (山东省枣庄市山亭区店子镇前庄村12号), town abbreviations (店子, 山城) and
        villages written without 村 after their town (店子前庄12号). A village named without any town is
        recognised only by its full name, and only if that name is unique in the district. Addresses
        outside the district usually give ``none``. Pure string work, no I/O: safe at a million rows.
        """
        if not text:
            return NO_MATCH
        if self._prefix_re is not None:
            start = self._prefix_re.match(text)
            if start is not None and start.end():
                text = text[start.end() :]
        town_match = self._town_re.search(text)
        if town_match is not None:
            town_code = self._town_by_name[town_match.group()]
            pattern = self._village_re_by_town.get(town_code)
            if pattern is not None:
                village_match = pattern.search(text, town_match.end())
                if village_match is not None:
                    village_code = self._village_by_town_name[town_code][village_match.group()]
                    return AddressMatch(town_code, village_code, "exact")
            return AddressMatch(town_code, None, "town_only")
        village_match = self._village_re.search(text)
        if village_match is not None:
            village_code = self._village_by_name[village_match.group()]
            return AddressMatch(self._villages[village_code].town, village_code, "exact")
        return NO_MATCH


@lru_cache(maxsize=1)
def default_directory() -> OrgDirectory:
    """The shipped Shanting directory, loaded once per process."""
    return OrgDirectory.load()
