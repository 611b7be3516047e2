"""API models of the blacklist domain."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ProviderKind = Literal["guoxueban", "dujingban", "sishu", "other"]
EvidenceKind = Literal["inspection_record", "photo", "decision", "report", "other"]


class EvidenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: EvidenceKind
    description: str = Field(min_length=4, max_length=2000)
    reference: str | None = Field(default=None, max_length=200)


class ProviderCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "明德国学堂",
                    "kind": "guoxueban",
                    "town": "370406101",
                    "location": "店子镇某村民房",
                    "evidence": [
                        {
                            "kind": "inspection_record",
                            "description": "2026年10月联合检查：无办学许可，在读适龄儿童6人",
                            "reference": "店子镇教办〔2026〕12号",
                        }
                    ],
                }
            ]
        },
    )

    name: str = Field(min_length=2, max_length=100)
    kind: ProviderKind
    town: str | None = Field(default=None, max_length=12)
    location: str | None = Field(default=None, max_length=200)
    evidence: list[EvidenceIn] = Field(min_length=1, max_length=20)


class ProviderPublic(BaseModel):
    id: str
    name: str
    kind: str
    town: str | None
    location: str | None
    status: str
    listed_on: dt.date
    listed_org: str
    delisted_on: dt.date | None
    delisting_reason: str | None
    evidence: list[EvidenceIn] = []


class Delisting(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "已取缔并复查无反弹"}]}
    )

    reason: str = Field(min_length=2, max_length=200)


class WhereaboutsCheck(BaseModel):
    """A case's whereabouts as recorded by the school (not stored; only matches are kept)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "case_id": "4f1a0c6e-2b7d-4f0e-9a51-0f1b6b4c2d11",
                    "town": "370406101",
                    "whereabouts": "据家长称在明德国学堂读经",
                }
            ]
        },
    )

    case_id: str = Field(max_length=36)
    town: str | None = Field(default=None, max_length=12)
    whereabouts: str = Field(min_length=2, max_length=1000)


class ProviderMatch(BaseModel):
    id: str
    name: str
    kind: str
