"""API models of the referrals domain."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal[
    "returned",
    "action_taken",
    "no_violation_found",
    "assistance_granted",
    "records_updated",
    "placed",
    "not_applicable",
]


class ReferralCreate(BaseModel):
    """A referral the school or town sends by hand (e.g. a venue admitting pupils, a prisoner's child)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "venue",
                    "case_id": "4f1a0c6e-2b7d-4f0e-9a51-0f1b6b4c2d11",
                    "details": "学生工作日在某网吧上网，网吧未核验年龄",
                }
            ]
        },
    )

    kind: Literal["child_labour", "venue", "hardship_family", "disabled_unenrolled", "prisoner_child"]
    case_id: str = Field(max_length=36)
    details: str = Field(default="", max_length=1000, description="Facts about the employer/venue; no names")


class ReferralOutcome(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"outcome": "action_taken", "note": "已责令网吧整改并罚款"}]},
    )

    outcome: Outcome
    note: str | None = Field(default=None, max_length=500)


class ReferralPublic(BaseModel):
    id: str
    kind: str
    subject_id: str
    case_id: str | None
    child_id: str | None
    from_org: str
    to_org: str
    required_action: str
    details: str
    status: str
    received_at: dt.datetime | None
    outcome: str | None
    outcome_note: str | None
    closed_on: dt.date | None
