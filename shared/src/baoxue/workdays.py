"""Working days on the official Chinese holiday calendar (法定节假日与调休).

Deadlines such as "10 working days per transfer step" are counted on the State Council's arrangement for
each year: official days off (which may fall on weekdays) and make-up working days (调休) on weekends.
Years come from the `chinese_calendar` package plus JSON files for years it does not know yet:

    {"year": 2027, "holidays": ["2027-01-01", ...], "workdays": ["2027-02-07", ...],
     "source": "国办发明电〔2026〕X号"}

A date in a year without data is never silently counted as Monday–Friday: the strict functions raise
`CalendarYearMissing`, the lenient one counts Monday–Friday and says so in its warnings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

BUNDLED_ARRANGEMENTS_DIR = Path(__file__).parent / "reference" / "calendar"
"""Arrangement files shipped with the code (may be absent when there are none)."""

_ARRANGEMENT_KEYS = frozenset({"year", "holidays", "workdays", "source"})
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SATURDAY = 5
CHINA = ZoneInfo("Asia/Shanghai")


def today_in_china() -> date:
    """Today's calendar day in China (Asia/Shanghai, UTC+8): deadlines, visit and census dates are legal
    days there, whatever the server's own time zone."""
    return datetime.now(CHINA).date()


class CalendarYearMissing(LookupError):
    """No holiday arrangement is loaded for `year`, so working days cannot be counted exactly."""

    def __init__(self, year: int) -> None:
        super().__init__(f"no holiday arrangement loaded for {year}")
        self.year = year


class ArrangementError(ValueError):
    """A year's holiday arrangement is malformed or contradicts one already loaded."""


@dataclass(frozen=True)
class YearArrangement:
    """One year's official arrangement: days off (any weekday) and make-up working days (weekends)."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str

    def is_workday(self, day: date) -> bool:
        """True when `day` (in this year) is a working day under this arrangement."""
        return day in self.workdays or (day.weekday() < _SATURDAY and day not in self.holidays)


@dataclass(frozen=True)
class Deadline:
    """A due date and the reasons it may be inexact (e.g. `calendar_year_missing:2027`)."""

    due: date
    warnings: tuple[str, ...] = ()


class WorkdayCalendar:
    """Working-day arithmetic over the years whose arrangement is loaded."""

    def __init__(self, arrangements: Iterable[YearArrangement] = ()) -> None:
        self._years: dict[int, YearArrangement] = {}
        for arrangement in arrangements:
            self.add_year(arrangement)

    @classmethod
    def load(cls, extra_dir: Path | None = None) -> WorkdayCalendar:
        """Build a calendar from `chinese_calendar`'s years, the files in `BUNDLED_ARRANGEMENTS_DIR`, and
        every `*.json` in `extra_dir`. Raises ArrangementError (naming the file) for a bad or
        contradictory file; a file repeating a known year with the same effect is accepted."""
        calendar = cls(_package_arrangements())
        for directory in (BUNDLED_ARRANGEMENTS_DIR, extra_dir):
            if directory is None or not directory.is_dir():
                continue
            for path in sorted(directory.glob("*.json")):
                arrangement = validate_arrangement_file(path)
                try:
                    calendar.add_year(arrangement)
                except ArrangementError as exc:
                    raise ArrangementError(f"{path.name}: {exc}") from None
        return calendar

    def add_year(self, arrangement: YearArrangement) -> None:
        """Add one year after checking it: all dates inside the year, no date both a holiday and a make-up
        workday, make-up workdays on weekends. Re-adding a year is accepted only when every day keeps its
        status; otherwise ArrangementError."""
        _check_arrangement(arrangement)
        known = self._years.get(arrangement.year)
        if known is not None:
            if not _same_effect(known, arrangement):
                raise ArrangementError(
                    f"the arrangement for {arrangement.year} differs from the one already loaded "
                    f"({known.source})"
                )
            return
        self._years[arrangement.year] = arrangement

    @property
    def years(self) -> tuple[int, ...]:
        """The covered years, ascending."""
        return tuple(sorted(self._years))

    def covers(self, year: int) -> bool:
        """True when an arrangement is loaded for `year`."""
        return year in self._years

    def is_workday(self, day: date) -> bool:
        """True when `day` is a working day; raises CalendarYearMissing for a year without data."""
        arrangement = self._years.get(day.year)
        if arrangement is None:
            raise CalendarYearMissing(day.year)
        return arrangement.is_workday(day)

    def add_workdays(self, start: date, n: int) -> Deadline:
        """The date `n` working days after `start` (`start` itself not counted; n=0 gives `start`).

        Raises CalendarYearMissing when the count runs through a year without data.
        """
        return self._add_workdays(start, n, lenient=False)

    def add_workdays_lenient(self, start: date, n: int) -> Deadline:
        """Like `add_workdays`, but days in a year without data count as working days Monday–Friday and the
        result carries the warning `calendar_year_missing:<year>` for each such year."""
        return self._add_workdays(start, n, lenient=True)

    def workdays_between(self, a: date, b: date) -> int:
        """Number of working days after `a` up to and including `b`; negative when `b` is before `a`.

        So `workdays_between(start, add_workdays(start, n).due) == n`. Raises CalendarYearMissing for a
        year without data.
        """
        if b < a:
            return -self.workdays_between(b, a)
        return sum(1 for offset in range(1, (b - a).days + 1) if self.is_workday(a + timedelta(days=offset)))

    def _add_workdays(self, start: date, n: int, *, lenient: bool) -> Deadline:
        if n < 0:
            raise ValueError("the number of working days must not be negative")
        day, counted, missing_years = start, 0, set[int]()
        while counted < n:
            day += timedelta(days=1)
            if lenient and not self.covers(day.year):
                missing_years.add(day.year)
                counted += day.weekday() < _SATURDAY
            else:
                counted += self.is_workday(day)
        warnings = tuple(f"calendar_year_missing:{year}" for year in sorted(missing_years))
        return Deadline(due=day, warnings=warnings)


@cache
def default_calendar() -> WorkdayCalendar:
    """The calendar of `chinese_calendar` plus the bundled arrangement files, built once per process."""
    return WorkdayCalendar.load()


def validate_arrangement_file(path: Path) -> YearArrangement:
    """Read and check one arrangement JSON file (for loading and for the admin command).

    Raises ArrangementError with a message naming the file and the problem.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        arrangement = _arrangement_from_json(document)
        _check_arrangement(arrangement)
    except OSError as exc:
        raise ArrangementError(f"{path.name}: cannot be read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ArrangementError(f"{path.name}: not valid JSON (line {exc.lineno})") from None
    except ArrangementError as exc:
        raise ArrangementError(f"{path.name}: {exc}") from None
    return arrangement


def _arrangement_from_json(document: Any) -> YearArrangement:
    if not isinstance(document, dict):
        raise ArrangementError("expected a JSON object")
    missing = _ARRANGEMENT_KEYS - document.keys()
    unknown = document.keys() - _ARRANGEMENT_KEYS
    if missing:
        raise ArrangementError(f"missing field(s): {', '.join(sorted(missing))}")
    if unknown:
        raise ArrangementError(f"unknown field(s): {', '.join(sorted(unknown))}")
    year, source = document["year"], document["source"]
    if not isinstance(year, int) or isinstance(year, bool):
        raise ArrangementError("'year' must be an integer")
    if not isinstance(source, str) or not source.strip():
        raise ArrangementError("'source' must name the official notice")
    return YearArrangement(
        year=year,
        holidays=_dates(document["holidays"], "holidays"),
        workdays=_dates(document["workdays"], "workdays"),
        source=source.strip(),
    )


def _dates(values: Any, field: str) -> frozenset[date]:
    if not isinstance(values, list):
        raise ArrangementError(f"'{field}' must be a list of YYYY-MM-DD dates")
    dates: set[date] = set()
    for value in values:
        if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            raise ArrangementError(f"'{field}' has {value!r}, expected a YYYY-MM-DD date")
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ArrangementError(f"'{field}' has {value!r}, which is not a real date") from None
        if day in dates:
            raise ArrangementError(f"'{field}' lists {value} twice")
        dates.add(day)
    return frozenset(dates)


def _check_arrangement(arrangement: YearArrangement) -> None:
    year = arrangement.year
    outside = sorted(d for d in arrangement.holidays | arrangement.workdays if d.year != year)
    if outside:
        raise ArrangementError(f"{outside[0].isoformat()} is outside the year {year}")
    both = sorted(arrangement.holidays & arrangement.workdays)
    if both:
        raise ArrangementError(f"{both[0].isoformat()} is listed both as holiday and as make-up workday")
    on_weekdays = sorted(d for d in arrangement.workdays if d.weekday() < _SATURDAY)
    if on_weekdays:
        raise ArrangementError(f"make-up workday {on_weekdays[0].isoformat()} is not a Saturday or Sunday")


def _same_effect(first: YearArrangement, second: YearArrangement) -> bool:
    # Lists may differ in form (e.g. weekend holidays listed or not) yet mean the same working days.
    day, end = date(first.year, 1, 1), date(first.year, 12, 31)
    while day <= end:
        if first.is_workday(day) != second.is_workday(day):
            return False
        day += timedelta(days=1)
    return True


def _package_arrangements() -> list[YearArrangement]:
    source = f"chinese_calendar {chinese_calendar.__version__}"
    years = sorted({day.year for day in chinese_calendar.holidays})
    return [
        YearArrangement(
            year=year,
            holidays=frozenset(day for day in chinese_calendar.holidays if day.year == year),
            workdays=frozenset(day for day in chinese_calendar.workdays if day.year == year),
            source=source,
        )
        for year in years
    ]
