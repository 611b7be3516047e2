"""API models of the calendar domain."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class ArrangementLoad(BaseModel):
    """A year's State Council holiday arrangement, as published (国务院办公厅关于部分节假日安排的通知)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "year": 2027,
                    "holidays": ["2027-01-01", "2027-02-06", "2027-02-07"],
                    "workdays": ["2027-02-14"],
                    "source": "国办发明电〔2026〕X号",
                }
            ]
        },
    )

    year: int = Field(ge=2000, le=2100)
    holidays: list[dt.date] = Field(description="Official days off (any weekday).", max_length=120)
    workdays: list[dt.date] = Field(description="Make-up working days on weekends (调休).", max_length=40)
    source: str = Field(min_length=3, max_length=200, description="The official notice's number.")


class ArrangementPublic(BaseModel):
    year: int
    source: str
    holidays: list[dt.date]
    workdays: list[dt.date]
    origin: str = Field(description="'database' (loaded here) or 'bundled' (package / files).")


class CalendarYears(BaseModel):
    years: list[int]
    loaded: list[ArrangementPublic]


class DeadlineQuote(BaseModel):
    start: dt.date
    workdays: int
    due: dt.date
    exact: bool
    warnings: list[str]


class StatutoryItemPublic(BaseModel):
    code: str
    period: str
    due: dt.date
    owners: list[str]
    what_en: str
    what_zh: str
    tracked: bool
    is_workday: bool | None = Field(description="null when the year has no calendar data")


class StatutoryCalendar(BaseModel):
    year: int
    items: list[StatutoryItemPublic]
    warnings: list[str]
