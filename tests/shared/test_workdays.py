"""Working days on the official holiday calendar, including make-up working days (调休)."""

import json
from datetime import date, timedelta

import chinese_calendar
import pytest

from baoxue.workdays import (
    ArrangementError,
    CalendarYearMissing,
    Deadline,
    WorkdayCalendar,
    YearArrangement,
    default_calendar,
    validate_arrangement_file,
)

# A year no package will know: its arrangement comes only from the JSON written by these tests.
FUTURE = 2099
FUTURE_ARRANGEMENT = {
    "year": FUTURE,
    "holidays": ["2099-01-01", "2099-01-02", "2099-01-03"],  # Thu, Fri, Sat
    "workdays": ["2099-01-04"],  # Sunday make-up day
    "source": "test data",
}


def write_json(directory, name, document):
    path = directory / name
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def test_package_data_has_the_2025_national_day_arrangement():
    # Checked against chinese_calendar's data so the test states what the deadline below relies on.
    make_up_days = sorted(d for d in chinese_calendar.workdays if d.year == 2025 and d.month in (9, 10))
    assert make_up_days == [date(2025, 9, 28), date(2025, 10, 11)]
    assert [d.strftime("%a") for d in make_up_days] == ["Sun", "Sat"]
    days_off = sorted(d for d in chinese_calendar.holidays if date(2025, 10, 1) <= d <= date(2025, 10, 31))
    assert days_off == [date(2025, 10, day) for day in range(1, 9)]


def test_ten_working_days_across_golden_week():
    calendar = WorkdayCalendar.load()
    for day in (date(2025, 9, 28), date(2025, 10, 11)):
        assert calendar.is_workday(day)
    assert not calendar.is_workday(date(2025, 10, 8))  # a Wednesday off
    assert not calendar.is_workday(date(2025, 10, 12))  # an ordinary Sunday

    deadline = calendar.add_workdays(date(2025, 9, 26), 10)
    # 9-28 (Sun), 9-29, 9-30, [10-1 … 10-8 off], 10-9, 10-10, 10-11 (Sat), 10-13, 10-14, 10-15, 10-16
    assert deadline == Deadline(due=date(2025, 10, 16), warnings=())
    assert calendar.workdays_between(date(2025, 9, 26), date(2025, 10, 16)) == 10
    assert calendar.workdays_between(date(2025, 10, 16), date(2025, 9, 26)) == -10
    assert calendar.add_workdays_lenient(date(2025, 9, 26), 10) == deadline


def test_zero_and_negative_counts():
    calendar = WorkdayCalendar.load()
    assert calendar.add_workdays(date(2025, 10, 4), 0) == Deadline(due=date(2025, 10, 4))  # even a holiday
    assert calendar.add_workdays(date(2025, 10, 4), 1).due == date(2025, 10, 9)
    assert calendar.workdays_between(date(2025, 10, 4), date(2025, 10, 4)) == 0
    with pytest.raises(ValueError):
        calendar.add_workdays(date(2025, 10, 4), -1)


def test_package_years_are_covered():
    calendar = WorkdayCalendar.load()
    assert calendar.covers(2004) and calendar.covers(2025) and calendar.covers(2026)
    assert not calendar.covers(2003)
    assert not calendar.covers(FUTURE)
    assert calendar.years == tuple(range(calendar.years[0], calendar.years[-1] + 1))
    assert default_calendar().covers(2025)


def test_a_year_without_data_is_never_guessed_by_the_strict_functions():
    calendar = WorkdayCalendar.load()
    with pytest.raises(CalendarYearMissing) as caught:
        calendar.is_workday(date(FUTURE, 3, 2))
    assert caught.value.year == FUTURE
    with pytest.raises(CalendarYearMissing):
        calendar.add_workdays(date(FUTURE - 1, 12, 20), 10)
    with pytest.raises(CalendarYearMissing):
        calendar.workdays_between(date(2025, 1, 1), date(FUTURE, 1, 1))


def test_lenient_counting_falls_back_to_monday_to_friday_and_says_so(tmp_path):
    previous_year = {"year": FUTURE - 1, "holidays": [], "workdays": [], "source": "test data"}
    write_json(tmp_path, "previous.json", previous_year)
    calendar = WorkdayCalendar.load(tmp_path)

    # From Thu 2098-12-25: Fri 26, Mon 29, Tue 30, Wed 31, then 2099 without data: Thu 1, Fri 2, Mon 5.
    deadline = calendar.add_workdays_lenient(date(FUTURE - 1, 12, 25), 7)
    assert deadline == Deadline(due=date(FUTURE, 1, 5), warnings=(f"calendar_year_missing:{FUTURE}",))
    with pytest.raises(CalendarYearMissing):
        calendar.add_workdays(date(FUTURE - 1, 12, 25), 7)
    assert calendar.add_workdays_lenient(date(FUTURE - 1, 12, 25), 4).warnings == ()


def test_a_year_loaded_from_json(tmp_path):
    write_json(tmp_path, f"{FUTURE}.json", FUTURE_ARRANGEMENT)
    (tmp_path / "notes.txt").write_text("ignored: only *.json files are read")
    calendar = WorkdayCalendar.load(tmp_path)

    assert calendar.covers(FUTURE) and calendar.covers(2025)
    assert not calendar.is_workday(date(FUTURE, 1, 1))  # Thursday off
    assert calendar.is_workday(date(FUTURE, 1, 4))  # make-up Sunday
    assert not calendar.is_workday(date(FUTURE, 1, 10))  # ordinary Saturday
    # From Wed 2098-12-31 (year not loaded, but not counted): Sun 4, Mon 5
    assert calendar.add_workdays(date(FUTURE - 1, 12, 31), 2) == Deadline(due=date(FUTURE, 1, 5))


def test_a_file_repeating_a_package_year_with_the_same_effect_is_accepted(tmp_path):
    same_2025 = {
        "year": 2025,
        # Weekend days off left out: they change nothing.
        "holidays": sorted(
            d.isoformat() for d in chinese_calendar.holidays if d.year == 2025 and d.weekday() < 5
        ),
        "workdays": sorted(d.isoformat() for d in chinese_calendar.workdays if d.year == 2025),
        "source": "国办发明电〔2024〕12号",
    }
    write_json(tmp_path, "2025.json", same_2025)
    assert WorkdayCalendar.load(tmp_path).add_workdays(date(2025, 9, 26), 10).due == date(2025, 10, 16)


def test_a_file_contradicting_a_loaded_year_is_rejected(tmp_path):
    write_json(tmp_path, "2025.json", {"year": 2025, "holidays": [], "workdays": [], "source": "typo"})
    with pytest.raises(ArrangementError, match=r"2025\.json: the arrangement for 2025 differs"):
        WorkdayCalendar.load(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"holidays": ["2098-12-31"]}, "2098-12-31 is outside the year 2099"),
        ({"workdays": ["2099-01-01"]}, "listed both as holiday and as make-up workday"),
        ({"workdays": ["2099-01-05"]}, "make-up workday 2099-01-05 is not a Saturday or Sunday"),
        ({"holidays": ["2099-02-30"]}, "not a real date"),
        ({"holidays": ["2099/01/01"]}, "expected a YYYY-MM-DD date"),
        ({"holidays": ["2099-01-01", "2099-01-01"]}, "lists 2099-01-01 twice"),
        ({"holidays": "2099-01-01"}, "must be a list"),
        ({"year": "2099"}, "'year' must be an integer"),
        ({"source": " "}, "'source' must name the official notice"),
        ({"source": None}, "'source' must name the official notice"),
        ({"holiday": []}, "unknown field(s): holiday"),
    ],
)
def test_bad_arrangement_files_are_rejected_with_a_clear_message(tmp_path, change, message):
    path = write_json(tmp_path, "bad.json", FUTURE_ARRANGEMENT | change)
    with pytest.raises(ArrangementError) as caught:
        validate_arrangement_file(path)
    assert str(caught.value).startswith("bad.json: ")
    assert message in str(caught.value)
    with pytest.raises(ArrangementError):
        WorkdayCalendar.load(tmp_path)


def test_unreadable_and_incomplete_files(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"year": 2099,', encoding="utf-8")
    with pytest.raises(ArrangementError, match=r"broken\.json: not valid JSON"):
        validate_arrangement_file(broken)
    incomplete = write_json(tmp_path, "incomplete.json", {"year": FUTURE})
    with pytest.raises(ArrangementError, match=r"missing field\(s\): holidays, source, workdays"):
        validate_arrangement_file(incomplete)
    with pytest.raises(ArrangementError, match="cannot be read"):
        validate_arrangement_file(tmp_path / "absent.json")
    with pytest.raises(ArrangementError, match="expected a JSON object"):
        validate_arrangement_file(write_json(tmp_path, "list.json", []))


def test_two_files_for_the_same_new_year_must_agree(tmp_path):
    write_json(tmp_path, "a.json", FUTURE_ARRANGEMENT)
    write_json(tmp_path, "b.json", FUTURE_ARRANGEMENT | {"workdays": []})
    with pytest.raises(ArrangementError, match=r"b\.json: the arrangement for 2099 differs"):
        WorkdayCalendar.load(tmp_path)


def test_add_year_validates_too():
    calendar = WorkdayCalendar()
    assert calendar.years == ()
    with pytest.raises(ArrangementError):
        calendar.add_year(
            YearArrangement(
                year=FUTURE,
                holidays=frozenset({date(FUTURE, 1, 1)}),
                workdays=frozenset({date(FUTURE, 1, 1)}),
                source="test data",
            )
        )
    calendar.add_year(YearArrangement(year=FUTURE, holidays=frozenset(), workdays=frozenset(), source="test"))
    assert calendar.years == (FUTURE,)
    monday = date(FUTURE, 1, 5)
    assert calendar.workdays_between(monday, monday + timedelta(days=7)) == 5
