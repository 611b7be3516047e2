"""API models of the deadlines domain."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class DeadlinePublic(BaseModel):
    id: str
    kind: str
    org: str
    subject_id: str
    case_id: str | None
    due_date: dt.date
    status: str
    warnings: list[str]
    reminded_on: dt.date | None
    closed_on: dt.date | None
    on_time: bool | None


class SweepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"today": "2026-11-26"}]})

    today: dt.date | None = Field(default=None, description="Defaults to today in Asia/Shanghai.")


class SweepPublic(BaseModel):
    today: dt.date
    opened: int
    reminded: int
    lapsed: int
    advanced: int
