"""API models of placements and the home-teaching log."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PlacementMode = Literal["regular_class", "special_school", "home_delivery", "remote", "institution_class"]


class PlacementCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "child_id": "6f1c2a9e-1b7d-4c55-9d0e-6a2f0d3c1b11",
                    "mode": "home_delivery",
                    "receiving_school": "37040600101001",
                    "student_id": "0b7a4c7e-7e0c-4f57-8a2e-4f9b8c1d2e3f",
                    "teaching_plan": "每周一次送教，语文、生活适应、康复训练",
                    "planned_sessions_per_term": 16,
                    "starts_on": "2026-09-01",
                }
            ]
        },
    )
    child_id: str = Field(min_length=1, max_length=36)
    mode: PlacementMode
    receiving_school: str = Field(pattern=r"^\d{14}$")
    student_id: str = Field(
        min_length=1, max_length=36, description="the placed child's 学籍 at the receiving school"
    )
    teaching_plan: str = Field(min_length=1, max_length=4000)
    planned_sessions_per_term: int = Field(default=0, ge=0, le=200)
    starts_on: dt.date
    ends_on: dt.date | None = None


class PlacementPublic(BaseModel):
    id: str
    child_id: str
    mode: str
    receiving_school: str
    student_id: str
    teaching_plan: str
    planned_sessions_per_term: int
    starts_on: dt.date
    ends_on: dt.date | None


class SessionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"term": "2026-autumn", "held_on": "2026-09-16", "teacher_ref": "T-0231", "minutes": 90}
            ]
        },
    )
    term: str = Field(
        pattern=r"^\d{4}-(spring|autumn)$",
        description="the semester containing held_on (school calendar); another is 422 session_term_mismatch",
    )
    held_on: dt.date = Field(
        description=(
            "the day of the session: not after today (422 session_in_future), inside the placement's"
            " period (422 session_outside_placement)"
        )
    )
    teacher_ref: str = Field(min_length=1, max_length=100)
    minutes: int = Field(ge=1, le=600)


class TermLog(BaseModel):
    term: str
    planned: int
    delivered: int
    shortfall: int
