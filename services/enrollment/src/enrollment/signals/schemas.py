"""API models of absence reports and vocational leavers."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class AbsenceLine(BaseModel):
    student_id: str = Field(min_length=1, max_length=36)
    unexcused_since: dt.date = Field(
        description=(
            "first day of the current run of unexcused absence: not after the report's reported_on (else the"
            " line is refused: absence_starts_after_report)"
        )
    )
    unexcused_days: int = Field(
        ge=1,
        le=400,
        description=(
            "school days missed without excuse in that run: at most the days from unexcused_since to"
            " reported_on, both counted (else the line is refused: absence_days_exceed_span). Four weeks make"
            " a suspected dropout (absence_four_weeks): the run spans at least 28 days up to reported_on AND"
            " at least 20 school days of it were missed (both configurable)"
        ),
    )


class AbsenceReport(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "batch_id": "37040600101001-2026-W41",
                    "school_code": "37040600101001",
                    "reported_on": "2026-10-09",
                    "lines": [
                        {
                            "student_id": "0b7a4c7e-7e0c-4f57-8a2e-4f9b8c1d2e3f",
                            "unexcused_since": "2026-09-07",
                            "unexcused_days": 20,
                        }
                    ],
                }
            ]
        },
    )
    batch_id: str = Field(
        min_length=1, max_length=64, description="the school's id of this batch (re-sending is harmless)"
    )
    school_code: str = Field(pattern=r"^\d{14}$")
    reported_on: dt.date = Field(
        description="the day the lines are as of: not after today, China's day (422 absence_report_in_future)"
    )
    lines: list[AbsenceLine] = Field(
        max_length=5000,
        description=(
            "checked one by one: a refused line is listed in the result's refused, the others are applied;"
            " a student who is not a record of this school refuses the whole batch (422 unknown_student)"
        ),
    )


class AbsenceLineRefusal(BaseModel):
    """A line not applied: a problem code of this service, with its titles."""

    index: int = Field(description="position of the line in the request")
    student_id: str
    code: str
    title: str
    title_zh: str
    errors: list[dict[str, str]] = Field(default_factory=list)


class AbsenceReportResult(BaseModel):
    batch_id: str
    lines: int = Field(description="lines received")
    accepted: int = Field(description="lines applied (for a replay: by the first send)")
    signals_raised: int
    replayed: bool
    refused: list[AbsenceLineRefusal] = Field(default_factory=list)


class VocationalLeaverCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"vocational_school": "37040600101201", "left_on": "2027-03-01"}]},
    )
    vocational_school: str = Field(pattern=r"^\d{14}$")
    left_on: dt.date


class VocationalOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"on": "2027-03-10"}]})
    on: dt.date


class VocationalLeaverPublic(BaseModel):
    id: str
    student_id: str
    from_school: str
    vocational_school: str
    left_on: dt.date
    confirm_by: dt.date
    state: str
    closed_on: dt.date | None
