"""API models of deferral and exemption applications."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DeferralCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "child_id": "6f1c2a9e-1b7d-4c55-9d0e-6a2f0d3c1b11",
                    "kind": "deferral",
                    "reason": "illness",
                    "evidence": ["medical-certificate/2026/0457"],
                    "filed_on": "2026-09-03",
                }
            ]
        },
    )
    child_id: str = Field(min_length=1, max_length=36)
    kind: Literal["deferral", "exemption"]
    reason: str = Field(
        min_length=1, max_length=40, description="a dropout-reason style code, e.g. illness, disability"
    )
    evidence: list[str] = Field(
        min_length=1, max_length=10, description="document references (medical certificate, assessment)"
    )
    filed_on: dt.date | None = Field(
        default=None,
        description="the date on the guardian's application (default: the day it is received); not in the "
        "future. The September window is checked on the day the server receives it.",
    )


class DeferralDecision(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"approve": True, "on": "2026-09-15", "valid_from": "2026-09-01", "valid_until": "2027-08-31"}
            ]
        },
    )
    approve: bool
    on: dt.date
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None


class DeferralPublic(BaseModel):
    id: str
    child_id: str
    kind: str
    reason: str
    evidence: list[str]
    filed_on: dt.date
    hukou_school_district: str | None
    state: str
    decided_on: dt.date | None
    valid_from: dt.date | None
    valid_until: dt.date | None
    expired_on: dt.date | None = Field(
        default=None, description="when the sweep found the approved period over (DeferralExpired published)"
    )
    version: int = Field(description='the application\'s version; its ETag is W/"<version>" (If-Match)')
    in_force_on: dt.date | None = None
    in_force: bool | None = None
