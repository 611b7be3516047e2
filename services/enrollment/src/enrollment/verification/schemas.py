"""API models of verification campaigns and tasks."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CampaignKind = Literal["september_verification", "november_comparison"]
TaskOutcome = Literal[
    "enrolled_local",
    "enrolled_elsewhere",
    "deferred",
    "exempted",
    "placed",
    "deceased",
    "moved_out",
    "duplicate_hukou",
    "hukou_only",
    "id_error",
    "abroad",
    "enrolled_without_xueji",
    "not_in_school",
    "unreachable",
]


class CampaignCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "september_verification",
                    "year": 2026,
                    "as_of": "2026-09-30",
                    "cutoff_date": "2026-08-31",
                    "deadline": "2026-10-31",
                }
            ]
        },
    )
    kind: CampaignKind
    year: int = Field(ge=2019, le=2100)
    as_of: dt.date
    cutoff_date: dt.date | None = Field(
        default=None, description="age cut-off; default 31 August of the year"
    )
    deadline: dt.date


class CampaignPublic(BaseModel):
    id: str
    kind: str
    year: int
    as_of: dt.date
    cutoff_date: dt.date
    deadline: dt.date
    rule_set_version: str
    state: str
    runs: int
    last_run_job: str | None
    result_version: int
    frozen_at: dt.datetime | None


class ProgressRow(BaseModel):
    hukou_town: str | None
    hukou_school_district: str | None
    in_scope: int
    accounted: int
    tasks_open: int
    tasks_awaiting_confirmation: int
    tasks_resolved: int


class TaskResolution(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "outcome": "enrolled_elsewhere",
                    "evidence": "电话核实：在江苏省徐州市就读",
                    "enrolling_org": "32",
                    "on": "2026-10-12",
                }
            ]
        },
    )
    outcome: TaskOutcome
    evidence: str = Field(min_length=1, max_length=2000, description="what was checked (no ID numbers)")
    enrolling_org: str | None = Field(
        default=None,
        pattern=r"^\d{2,14}$",
        description="school/district code, or province code when outside Shandong",
    )
    on: dt.date = Field(
        description="the day the child's whereabouts were established (China's day): not after the server's "
        "day; whether the task is resolved on time is judged on the day the server receives it"
    )


class TaskConfirmation(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"source": "enrolling_org", "on": "2026-10-15"}]}
    )
    source: Literal["enrolling_org", "provincial_platform"]
    on: dt.date = Field(
        description="the day 'enrolled elsewhere' was confirmed (China's day): not after the server's day; "
        "whether the task is resolved on time is judged on the day the server receives it"
    )


class TaskPublic(BaseModel):
    id: str
    campaign_id: str
    child_id: str
    hukou_town: str | None
    hukou_school_district: str
    due_on: dt.date
    state: str
    outcome: str | None
    enrolling_org: str | None
    resolved_on: dt.date | None
    version: int = Field(
        description='Send back as If-Match: W/"<version>" (optional; a stale one answers 412)'
    )
