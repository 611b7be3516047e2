"""The district's school calendar is one setting that casework's semesters and notify's statutory
calendar both read, so a visit's semester and the deadline that judges it agree."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from casework.semesters import bounds, semester_of
from casework.settings import CaseworkSettings
from notify.calendar.statutory import statutory_items
from notify.settings import NotifySettings


def test_one_shared_setting_moves_both_services(monkeypatch):
    monkeypatch.setenv("BAOXUE_SPRING_SEMESTER_START", "02-16")
    monkeypatch.setenv("BAOXUE_SPRING_SEMESTER_END", "07-10")
    casework, notify = CaseworkSettings(), NotifySettings()
    assert bounds("2027-spring", casework) == (dt.date(2027, 2, 16), dt.date(2027, 7, 10))
    assert bounds("2026-autumn", casework) == (dt.date(2026, 9, 1), dt.date(2027, 2, 15))
    assert semester_of(dt.date(2027, 2, 15), casework) == "2026-autumn"
    assert semester_of(dt.date(2027, 2, 16), casework) == "2027-spring"
    items = {(i.code, i.period): i.due for i in statutory_items(2027, notify)}
    # notify judges the spring visits on the day casework's spring semester ends, the autumn ones on the
    # last day of casework's autumn semester, and the census two weeks after the same start
    assert items[("visit_quota", "2027-spring")] == bounds("2027-spring", casework)[1]
    assert items[("visit_quota", "2026-autumn")] == bounds("2026-autumn", casework)[1]
    assert items[("census", "2027-spring")] == dt.date(2027, 2, 16) + dt.timedelta(days=14)


def test_a_service_can_still_override_its_own(monkeypatch):
    monkeypatch.setenv("BAOXUE_SPRING_SEMESTER_START", "02-16")
    monkeypatch.setenv("CASEWORK_SPRING_SEMESTER_START", "02-20")
    assert CaseworkSettings().spring_semester_start == "02-20"
    assert NotifySettings().spring_semester_start == "02-16"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BAOXUE_SPRING_SEMESTER_START", "02-30"),
        ("BAOXUE_AUTUMN_SEMESTER_START", "9-1"),
        ("BAOXUE_SPRING_SEMESTER_END", "09-15"),  # after the autumn start
    ],
)
def test_a_calendar_that_is_not_real_dates_is_refused_at_start_up(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        NotifySettings()
