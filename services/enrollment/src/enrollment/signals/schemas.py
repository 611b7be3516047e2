"""API models of absence reports and vocational leavers."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class AbsenceLine(BaseModel):
    student_id: str = Field(min_length=1, max_length=36)
    unexcused_since: dt.date = Field(description="first day of the current run of unexcused absence")
    unexcused_days: int = Field(ge=1, le=400, description="school days missed without excuse in that run")


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
    reported_on: dt.date
    lines: list[AbsenceLine] = Field(max_length=5000)


class AbsenceReportResult(BaseModel):
    batch_id: str
    lines: int
    signals_raised: int
    replayed: bool


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
