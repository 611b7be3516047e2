"""Semesters: codes like ``2026-autumn`` / ``2027-spring`` and their dates (the district's school calendar,
one library setting shared with notify)."""

from __future__ import annotations

import datetime as dt
import re

from baoxue.errors import Problem
from baoxue.workdays import today_in_china
from casework.settings import CaseworkSettings

SEMESTER_PATTERN = r"^20\d{2}-(autumn|spring)$"
_RE = re.compile(SEMESTER_PATTERN)


def _md(year: int, month_day: str) -> dt.date:
    month, day = (int(p) for p in month_day.split("-"))
    return dt.date(year, month, day)


def bounds(semester: str, settings: CaseworkSettings) -> tuple[dt.date, dt.date]:
    """First and last day of ``semester``; a 400 problem for a malformed code."""
    if not _RE.match(semester):
        raise Problem("A semester is written like 2026-autumn or 2027-spring.", code="bad_semester")
    year, term = int(semester[:4]), semester[5:]
    if not 2000 <= year <= 2099:
        raise Problem("The semester's year is out of range.", code="bad_semester")
    if term == "autumn":
        next_spring = _md(year + 1, settings.spring_semester_start)
        return _md(year, settings.autumn_semester_start), next_spring - dt.timedelta(days=1)
    return _md(year, settings.spring_semester_start), _md(year, settings.spring_semester_end)


def semester_of(day: dt.date, settings: CaseworkSettings) -> str | None:
    """The semester containing ``day``; None in the summer break."""
    for code in (f"{day.year}-spring", f"{day.year}-autumn", f"{day.year - 1}-autumn"):
        start, end = bounds(code, settings)
        if start <= day <= end:
            return code
    return None


today = today_in_china  # the casework modules' name for it (tests set a census's server day through it)
