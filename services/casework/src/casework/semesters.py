"""Semesters: codes like ``2026-autumn`` / ``2027-spring`` and their dates in the district's school
calendar (``baoxue.semesters``, one library setting shared with enrollment and notify); here a malformed
code is casework's 400 ``bad_semester`` problem."""

from __future__ import annotations

import datetime as dt

from baoxue import semesters as calendar
from baoxue.errors import Problem
from baoxue.workdays import today_in_china
from casework.settings import CaseworkSettings

SEMESTER_PATTERN = calendar.SEMESTER_PATTERN


def bounds(semester: str, settings: CaseworkSettings) -> tuple[dt.date, dt.date]:
    """First and last day of ``semester``; a 400 problem for a malformed code."""
    try:
        return calendar.bounds(semester, settings)
    except ValueError:
        raise Problem("A semester is written like 2026-autumn or 2027-spring.", code="bad_semester") from None


semester_of = calendar.semester_of  # the semester containing a day; None in the summer break


today = today_in_china  # the casework modules' name for it (tests set a census's server day through it)
