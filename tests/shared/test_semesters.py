"""The library's semesters: codes, their dates in the district's school calendar, and the semesters a
span of days touches (enrollment's home-teaching log lists a placement's terms with them)."""

from __future__ import annotations

import datetime as dt

import pytest

from baoxue.errors import Problem
from baoxue.semesters import bounds, order, semester_of, semesters_between
from baoxue.settings import ServiceSettings
from casework.semesters import bounds as casework_bounds
from casework.settings import CaseworkSettings

D = dt.date


def test_bounds_and_semester_of_follow_the_shared_school_calendar(monkeypatch):
    calendar = ServiceSettings()
    assert bounds("2026-autumn", calendar) == (D(2026, 9, 1), D(2027, 2, 28))
    assert bounds("2028-autumn", calendar) == (D(2028, 9, 1), D(2029, 2, 28))
    assert bounds("2027-spring", calendar) == (D(2027, 3, 1), D(2027, 7, 15))
    assert semester_of(D(2027, 2, 28), calendar) == "2026-autumn"
    assert semester_of(D(2027, 3, 1), calendar) == "2027-spring"
    assert semester_of(D(2027, 8, 1), calendar) is None  # the summer break
    monkeypatch.setenv("BAOXUE_SPRING_SEMESTER_START", "02-16")
    moved = ServiceSettings()
    assert bounds("2026-autumn", moved) == (D(2026, 9, 1), D(2027, 2, 15))
    assert semester_of(D(2027, 2, 15), moved) == "2026-autumn"
    assert semester_of(D(2027, 2, 16), moved) == "2027-spring"
    assert semester_of(D(2027, 7, 16), moved) is None


@pytest.mark.parametrize(
    "code", ["2026-winter", "26-autumn", "1999-spring", "2100-spring", "2026-Autumn", ""]
)
def test_a_malformed_code_is_a_value_error_and_casework_s_bad_semester(code):
    with pytest.raises(ValueError):
        bounds(code, ServiceSettings())
    with pytest.raises(Problem) as refused:
        casework_bounds(code, CaseworkSettings())
    assert refused.value.code == "bad_semester"


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (D(2025, 3, 1), D(2026, 7, 15), ["2025-spring", "2025-autumn", "2026-spring"]),
        (D(2025, 8, 1), D(2026, 3, 1), ["2025-autumn", "2026-spring"]),  # from the summer break
        (D(2026, 1, 10), D(2026, 1, 20), ["2025-autumn"]),  # inside the autumn semester's second year
        (D(2026, 7, 20), D(2026, 8, 31), []),  # the summer break alone
        (D(2026, 9, 1), D(2026, 9, 1), ["2026-autumn"]),
        (D(2026, 9, 2), D(2026, 9, 1), []),
    ],
)
def test_semesters_between_lists_every_semester_the_span_touches(first, last, expected):
    assert semesters_between(first, last, ServiceSettings()) == expected


def test_order_is_the_calendar_order():
    codes = ["2027-spring", "2026-autumn", "2026-spring", "2025-autumn", "1999-autumn"]
    assert sorted(codes, key=order) == [
        "1999-autumn",
        "2025-autumn",
        "2026-spring",
        "2026-autumn",
        "2027-spring",
    ]
