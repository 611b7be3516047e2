"""API models of student records, transitions, transfers and annotations."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from baoxue.dropout_reasons import DropoutReason

StudentStatus = Literal["enrolled", "suspended", "transferred_out", "dropped_out", "graduated", "deceased"]
# The reasons of a status change, published in StudentStatusChanged: codes of the lists in codes.py
# (dropout_reason, suspension_reason, resumption_reason), never free text.
SuspensionReason = Literal["illness", "disability", "family_circumstances", "other"]
ResumptionReason = Literal["resumed", "suspension_ended", "persuaded_back"]


class StudentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "student_number": "G370406201501010014",
                    "id_number": "370406201501010014",
                    "school_code": "37040600101001",
                    "grade": 4,
                }
            ]
        },
    )
    student_number: str = Field(min_length=2, max_length=40, description="学籍号: G+ID, J+18, or temporary L")
    id_number: str = Field(min_length=15, max_length=40, description="居民身份证号 (stored encrypted)")
    school_code: str = Field(pattern=r"^\d{14}$")
    grade: int = Field(ge=1, le=12)
    enrolled_on: dt.date | None = None


BATCH_LIMIT = 5000


class StudentBatch(BaseModel):
    """Many registrations in one call (a school's roll, a migration): each record is decided on its own."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "records": [
                        {
                            "student_number": "G370406201501010014",
                            "id_number": "370406201501010014",
                            "school_code": "37040600101001",
                            "grade": 4,
                        }
                    ]
                }
            ]
        },
    )
    records: list[StudentCreate] = Field(min_length=1, max_length=BATCH_LIMIT)


class BatchOutcome(BaseModel):
    """One record's outcome: created (its id) or refused (a problem code of this service, with titles)."""

    index: int = Field(description="position of the record in the request")
    outcome: Literal["created", "refused"]
    status: int = Field(description="the status the single POST /v1/students would have answered")
    id: str | None = None
    code: str | None = None
    title: str | None = None
    title_zh: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)


class BatchResult(BaseModel):
    created: int
    refused: int
    results: list[BatchOutcome]


class StudentPublic(BaseModel):
    id: str
    student_number: str
    id_number: str
    child_id: str | None
    school_code: str
    hukou_school_district: str | None
    grade: int
    status: str
    status_since: dt.date
    status_reason: str | None
    suspended_until: dt.date | None
    suspension_extended: bool
    version: int


class SuspensionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"starts_on": "2026-09-01", "until": "2027-06-30", "reason": "illness"}]
        },
    )
    starts_on: dt.date
    until: dt.date = Field(
        description=(
            "last day of the suspension: after starts_on, at most the same date one year later (29 February:"
            " 28 February), else 422 suspension_too_long"
        )
    )
    reason: SuspensionReason = Field(description="a code of the suspension_reason list (/v1/code-lists)")


class SuspensionExtension(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"until": "2028-06-30"}]})
    until: dt.date = Field(
        description=(
            "the new last day: after the current one, at most the same date one year after it (29 February:"
            " 28 February), else 422 suspension_too_long"
        )
    )


class Transition(BaseModel):
    """Graduation: when (the reason published is ``graduated``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"on": "2027-07-01"}]})
    on: dt.date


class Dropout(Transition):
    """Dropout: when, and why (a code of the dropout_reason list, or none)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"on": "2026-10-08", "reason": "learning_weariness"}]}
    )
    reason: DropoutReason | None = Field(default=None, description="a code of the dropout_reason list")


class Resumption(Transition):
    """Resumption: when, and why (a code of the resumption_reason list; ``resumed`` when none)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"on": "2027-03-01", "reason": "suspension_ended"}]}
    )
    reason: ResumptionReason | None = Field(default=None, description="a code of the resumption_reason list")


class TransferCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"to_school": "37040610101001", "requested_on": "2026-09-07"}]},
    )
    to_school: str = Field(
        pattern=r"^\w{6,20}$",
        description=(
            "receiving school: a school of the directory, or a code outside the district (an out-of-district"
            " school); a town, school district or department, or an unknown code of the district, is 422"
            " unknown_school"
        ),
    )
    requested_on: dt.date


class TransferApproval(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"side": "sending", "on": "2026-09-08"}]}
    )
    side: Literal["sending", "receiving"]
    on: dt.date


class TransferPublic(BaseModel):
    id: str
    student_id: str
    from_school: str
    to_school: str
    requested_on: dt.date
    due_on: dt.date
    sending_approved: bool
    receiving_approved: bool
    state: str = Field(description="requested, hanging (open); completed, rejected, cancelled (closed)")
    hanging_since: dt.date | None
    completed_on: dt.date | None
    closed_reason: str | None = Field(
        default=None,
        description="why a transfer was cancelled: its record was closed (student_dropped_out, …)",
    )
    closed_on: dt.date | None = None
    version: int = Field(description='the transfer\'s version; its ETag is W/"<version>" (If-Match)')


class AnnotationCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "assessing_body": "区残联残疾儿童入学评估委员会",
                    "evidence_ref": "assessment/2026/0132",
                    "assessed_on": "2026-09-10",
                    "reassess_on": "2027-09-10",
                }
            ]
        },
    )
    assessing_body: str = Field(min_length=2, max_length=100)
    evidence_ref: str = Field(min_length=1, max_length=200)
    assessed_on: dt.date
    reassess_on: dt.date


class AnnotationPublic(BaseModel):
    id: str
    student_id: str
    assessing_body: str
    evidence_ref: str
    assessed_on: dt.date
    reassess_on: dt.date
