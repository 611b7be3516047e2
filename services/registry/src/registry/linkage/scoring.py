"""Pairwise scoring of two descriptions of a child without a usable ID number (pure, no I/O).

Evidence: name (exact, or homophone through tone-less pinyin), birth date (exact, or a one-field
slip), sex, hukou village/town, guardian name. The weights are log-odds-like points; the thresholds
decide automatic links, review candidates and non-matches.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, NamedTuple

AUTO_LINK = 9.0
REVIEW = 6.0
MARGIN = 2.0


class Person(NamedTuple):
    """One description of a child (a feed row or a known record). Immutable; a named tuple because
    linkage builds one per known child of the blocks, a million at a time (0.39 µs each, against 1.47 µs
    for a frozen dataclass, whose fields are each set through ``object.__setattr__``; ``timeit``, 29 Nov)."""

    key: str
    name: str | None
    name_pinyin: str | None
    sex: str | None
    birth_date: dt.date | None
    hukou_town: str | None
    hukou_village: str | None
    guardian_name: str | None
    guardian_pinyin: str | None = None  # worked out when a score needs it, if not given

    @classmethod
    def of(cls, row: Any, key: str) -> Person:
        return cls(
            key=key,
            name=row["name"],
            name_pinyin=row["name_pinyin"],
            sex=row["sex"],
            birth_date=row["birth_date"],
            hukou_town=row["hukou_town"],
            hukou_village=row["hukou_village"],
            guardian_name=row["guardian_name"],
        )


def _guardian_pinyin(person: Person) -> str | None:
    """The guardian's name in pinyin: as given, or worked out when a score first needs it (most pairs
    are decided without it, so candidates need not carry it)."""
    if person.guardian_pinyin is not None or not person.guardian_name:
        return person.guardian_pinyin
    return _pinyin_of(person.guardian_name)


@lru_cache(
    maxsize=1 << 18
)  # ≈ 40 MB at most; a registry of a million children has ≈ 250,000 guardians in its blocks
def _pinyin_of(name: str) -> str:
    from registry.feeds.validation import name_pinyin

    return name_pinyin(name)


def near_date(a: dt.date, b: dt.date) -> bool:
    """One field of a birth date mistyped: two of year, month and day equal, or month and day swapped."""
    same = (a.year == b.year) + (a.month == b.month) + (a.day == b.day)
    return same == 2 or (a.year == b.year and a.month == b.day and a.day == b.month)


def score(a: Person, b: Person, needed: float | None = None) -> tuple[float, dict[str, str]]:
    """Points for ``a`` and ``b`` being the same child, and the evidence behind them.

    With ``needed``, a score that cannot reach it is left unfinished: the guardians' names are not
    compared as pinyin (a name converted per guardian: ≈ 1 s of the 18.6 s of B2 at 1M on 29 Nov) when
    their 1.5 points could not bring the score up to ``needed``. The points returned are then below
    ``needed``, as the finished score would be.
    """
    points = 0.0
    evidence: dict[str, str] = {}
    if a.name and b.name and a.name == b.name:
        points, evidence["name"] = points + 4, "exact"
    elif a.name_pinyin and a.name_pinyin == b.name_pinyin:
        points, evidence["name"] = points + 3, "homophone"
    elif a.name and b.name and a.name[0] == b.name[0]:
        evidence["name"] = "surname_only"
    else:
        points, evidence["name"] = points - 3, "different"
    if a.birth_date and b.birth_date:
        if a.birth_date == b.birth_date:
            points, evidence["birth_date"] = points + 3, "exact"
        elif near_date(a.birth_date, b.birth_date):
            points, evidence["birth_date"] = points + 1, "near"
        else:
            points, evidence["birth_date"] = points - 3, "different"
    if a.sex and b.sex:
        same = a.sex == b.sex
        points += 1 if same else -2
        evidence["sex"] = "same" if same else "different"
    if a.hukou_village and a.hukou_village == b.hukou_village:
        points, evidence["hukou"] = points + 2, "same_village"
    elif a.hukou_town and a.hukou_town == b.hukou_town:
        points, evidence["hukou"] = points + 1, "same_town"
    elif a.hukou_town and b.hukou_town:
        points, evidence["hukou"] = points - 1, "different_town"
    if a.guardian_name and a.guardian_name == b.guardian_name:
        points, evidence["guardian"] = points + 2, "exact"
    elif (
        a.guardian_name
        and b.guardian_name
        and (needed is None or points + 1.5 >= needed)
        and (pinyin := _guardian_pinyin(a))
        and pinyin == _guardian_pinyin(b)
    ):
        points, evidence["guardian"] = points + 1.5, "homophone"
    return points, evidence


def decide(best: float, second: float | None, evidence: dict[str, str]) -> str:
    """``auto`` (link now), ``review`` (queue for a person) or ``none``.

    Automatic only for a clear best candidate with the name (exact or homophone) and the birth date
    agreeing — or, with the exact name and the exact guardian, a birth date one field off (a typing slip).
    """
    unique = second is None or best - second >= MARGIN
    name, birth = evidence.get("name"), evidence.get("birth_date")
    birth_ok = birth == "exact" or (
        birth == "near" and name == "exact" and evidence.get("guardian") == "exact"
    )
    if best >= AUTO_LINK and unique and name in ("exact", "homophone") and birth_ok:
        return "auto"
    if best >= REVIEW:
        return "review"
    return "none"
