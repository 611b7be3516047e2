"""The statutory calendar of the notice (山政办字〔2019〕49号) as data: what is due when, and by whom.

Dates the notice states as "end of March" etc. are fixed; dates it leaves open (semester starts) come
from the settings. The list is per year because semester starts and working days differ by year.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from notify.settings import NotifySettings


@dataclass(frozen=True)
class StatutoryItem:
    """One recurring obligation of the notice in a given year."""

    code: str
    period: str
    due: dt.date
    owners: tuple[str, ...]
    what_en: str
    what_zh: str
    tracked: bool
    """True when notify opens a deadline per owning organisation and closes it from an event."""


def _mmdd(year: int, mmdd: str) -> dt.date:
    month, day = (int(part) for part in mmdd.split("-"))
    return dt.date(year, month, day)


def statutory_items(year: int, settings: NotifySettings) -> list[StatutoryItem]:
    """The notice's calendar for `year`, in date order."""
    spring = _mmdd(year, settings.spring_semester_start)
    autumn = _mmdd(year, settings.autumn_semester_start)
    spring_end = _mmdd(year, settings.spring_semester_end)
    previous_autumn_end = spring - dt.timedelta(days=1)
    two_weeks = dt.timedelta(days=settings.census_calendar_days)
    departments = ("dept_police", "dept_poverty", "dept_dpf", "dept_civil")
    items = [
        StatutoryItem(
            "visit_quota",
            f"{year - 1}-autumn",
            previous_autumn_end,
            ("school",),
            "Home visits of the autumn semester (every student, special groups more)",
            "秋季学期家访全覆盖（特殊群体按要求增加次数）",
            True,
        ),
        StatutoryItem(
            "visit_quota",
            f"{year}-spring",
            spring_end,
            ("school",),
            "Home visits of the spring semester (every student, special groups more)",
            "春季学期家访全覆盖（特殊群体按要求增加次数）",
            True,
        ),
        StatutoryItem(
            "feed",
            f"{year}-03",
            dt.date(year, 3, 31),
            departments,
            "Department feeds to the base database",
            "各部门向基础数据库报送数据",
            True,
        ),
        StatutoryItem(
            "census",
            f"{year}-spring",
            spring + two_weeks,
            ("school", "town"),
            "Special-needs student census",
            "特殊学生摸底排查",
            True,
        ),
        StatutoryItem(
            "dropout_report",
            f"{year}-03",
            dt.date(year, 3, 31),
            ("bureau",),
            "Dropout status report (generated from the case events, issued by the bureau)",
            "辍学情况报告（学区、学校上报，区教体局汇总）",
            True,
        ),
        StatutoryItem(
            "deferral_applications",
            f"{year}-09",
            _mmdd(year, "09-10"),
            ("school_district", "school"),
            "Deferral / exemption applications from parents",
            "家长提交延缓、免于入学书面申请",
            False,
        ),
        StatutoryItem(
            "feed",
            f"{year}-09",
            dt.date(year, 9, 30),
            departments,
            "Department feeds to the base database",
            "各部门向基础数据库报送数据",
            True,
        ),
        StatutoryItem(
            "verification",
            f"{year}-09",
            dt.date(year, 9, 30),
            ("bureau", "school_district", "school"),
            "Enrollment verification against the base database",
            "基础数据库与新生入学比对核查",
            True,
        ),
        StatutoryItem(
            "census",
            f"{year}-autumn",
            autumn + two_weeks,
            ("school", "town"),
            "Special-needs student census",
            "特殊学生摸底排查",
            True,
        ),
        StatutoryItem(
            "dropout_report",
            f"{year}-10",
            dt.date(year, 10, 31),
            ("bureau",),
            "Dropout status report (generated from the case events, issued by the bureau)",
            "辍学情况报告（学区、学校上报，区教体局汇总）",
            True,
        ),
        StatutoryItem(
            "bulletin",
            f"{year}-11",
            dt.date(year, 11, 30),
            ("bureau",),
            "District comparison and bulletin",
            "全区比对并通报",
            True,
        ),
    ]
    return sorted(items, key=lambda item: item.due)
