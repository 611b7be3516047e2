"""API models of the documents domain."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DocumentIssue(BaseModel):
    """Issue a numbered document from a template. The issuing organisation is the caller's."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "correction_order",
                    "fields": {"case_ref": "c-4f1a", "deadline": "2026-12-18"},
                    "recipient_org": None,
                    "case_id": "4f1a0c6e-2b7d-4f0e-9a51-0f1b6b4c2d11",
                    "addressee": "张某某",
                }
            ]
        },
    )

    kind: str = Field(
        description="parent_letter | correction_order | admission_notice | judicial_referral | "
        "hukou_cleanup_notice"
    )
    fields: dict[str, str] = Field(default_factory=dict, max_length=30)
    recipient_org: str | None = Field(default=None, max_length=20)
    case_id: str | None = Field(default=None, max_length=36)
    addressee: str | None = Field(
        default=None, max_length=60, description="Guardian's name (stored encrypted)."
    )
    issued_on: dt.date | None = Field(
        default=None,
        description="Defaults to today (Asia/Shanghai); not after today, at most "
        "NOTIFY_DOCUMENT_BACKDATE_DAYS (30) days before it. Its year is the number's.",
    )


class DocumentCorrection(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"fields": {"case_ref": "c-4f1a", "deadline": "2026-12-25"}, "reason": "期限填写错误"}
            ]
        },
    )

    fields: dict[str, str] = Field(max_length=30)
    addressee: str | None = Field(default=None, max_length=60)
    reason: str = Field(min_length=2, max_length=200)


class DocumentPublic(BaseModel):
    id: str
    kind: str
    number: str
    version: int
    supersedes_id: str | None
    issuing_org: str
    recipient_org: str | None
    case_id: str | None
    escalation_id: str | None
    title: str
    paragraphs: list[str]
    addressee: str | None = Field(description="Masked unless the caller stated a purpose.")
    content_sha256: str
    issued_on: dt.date
    issued_by: str


class AcknowledgementCreate(BaseModel):
    """A parent's receipt, signed commitment (承诺书) or refusal, recorded by the school."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "commitment",
                    "acknowledged_on": "2026-11-20",
                    "signer": "张某某",
                    "evidence_ref": "档案盒 2026-12 第3页",
                }
            ]
        },
    )

    kind: Literal["received", "commitment", "refused"]
    acknowledged_on: dt.date
    signer: str | None = Field(default=None, max_length=60)
    evidence_ref: str | None = Field(default=None, max_length=200)


class AcknowledgementPublic(BaseModel):
    id: str
    document_id: str
    kind: str
    acknowledged_on: dt.date
    evidence_ref: str | None
    recorded_org: str
