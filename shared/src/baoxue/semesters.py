"""Semesters (terms) of the district's school calendar: codes like ``2026-autumn`` / ``2027-spring`` and
their dates.

The dates come from the library's settings (``spring_semester_start``, ``spring_semester_end``,
``autumn_semester_start``, MM-DD, one value for every service): the spring semester runs from its start to
its end, the autumn semester from its start to the day before the next spring start; the summer break
belongs to no semester. Casework's ``casework.semesters`` answers a malformed code with its
``bad_semester`` problem on top of this module.
"""

from __future__ import annotations

import datetime as dt
import re

from baoxue.settings import ServiceSettings

SEMESTER_PATTERN = r"^20\d{2}-(autumn|spring)$"
_RE = re.compile(SEMESTER_PATTERN)
_ANY_YEAR = re.compile(r"^(\d{4})-(spring|autumn)$")
_TERMS = ("spring", "autumn")  # in calendar order within a year


def _md(year: int, month_day: str) -> dt.date:
    month, day = (int(p) for p in month_day.split("-"))
    return dt.date(year, month, day)


def parse(semester: str) -> tuple[int, str]:
    """(year, "spring" | "autumn") of a semester code; ``ValueError`` for a malformed one."""
    if not _RE.match(semester):
        raise ValueError(f"a semester is written like 2026-autumn or 2027-spring, not {semester!r}")
    return int(semester[:4]), semester[5:]


def order(semester: str) -> tuple[int, int]:
    """Sort key putting semesters in calendar order (``2026-spring`` < ``2026-autumn`` < ``2027-spring``);
    any four-digit year sorts (a code stored before it was checked)."""
    match = _ANY_YEAR.match(semester)
    if match is None:
        raise ValueError(f"a semester is written like 2026-autumn or 2027-spring, not {semester!r}")
    return int(match[1]), _TERMS.index(match[2])


def bounds(semester: str, calendar: ServiceSettings) -> tuple[dt.date, dt.date]:
    """First and last day of ``semester`` in the school calendar of ``calendar`` (a service's settings)."""
    return _bounds(*parse(semester), calendar)


def _bounds(year: int, term: str, calendar: ServiceSettings) -> tuple[dt.date, dt.date]:
    if term == "autumn":
        next_spring = _md(year + 1, calendar.spring_semester_start)
        return _md(year, calendar.autumn_semester_start), next_spring - dt.timedelta(days=1)
    return _md(year, calendar.spring_semester_start), _md(year, calendar.spring_semester_end)


def semester_of(day: dt.date, calendar: ServiceSettings) -> str | None:
    """The semester containing ``day``; None in the summer break."""
    for year, term in ((day.year, "spring"), (day.year, "autumn"), (day.year - 1, "autumn")):
        start, end = _bounds(year, term, calendar)
        if start <= day <= end:
            return f"{year}-{term}"
    return None


def semesters_between(first: dt.date, last: dt.date, calendar: ServiceSettings) -> list[str]:
    """Every semester with at least one day in ``first`` … ``last`` (inclusive), in calendar order; empty
    when ``last`` is before ``first`` or the span lies in one summer break."""
    found: list[str] = []
    if last < first:
        return found
    year = first.year - 1  # the autumn semester of the year before runs into this one
    while True:
        for term in _TERMS:
            start, end = _bounds(year, term, calendar)
            if start > last:
                return found
            if end >= first:
                found.append(f"{year}-{term}")
        year += 1
