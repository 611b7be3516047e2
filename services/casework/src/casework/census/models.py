"""Tables of the special-needs census (each semester, per school) and the support plans."""

import datetime as dt

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from casework.database import CaseworkModel


class CensusEntry(CaseworkModel, table=True):
    """A special-needs student a school marked in a semester's census, with its categories."""

    __tablename__ = "census_entries"

    school_code: str = Field(primary_key=True, max_length=20)
    semester: str = Field(primary_key=True, max_length=12)
    student_id: str = Field(primary_key=True, max_length=64)
    child_id: str | None = Field(default=None, max_length=64)
    categories: list[str] = Field(default_factory=list, sa_type=JSON)
    marked_on: dt.date
    marked_by: str = Field(max_length=100)


class Census(CaseworkModel, table=True):
    """A school's census of a semester once completed (the absence of a row means not completed)."""

    __tablename__ = "censuses"

    school_code: str = Field(primary_key=True, max_length=20)
    semester: str = Field(primary_key=True, max_length=12)
    id: str = Field(max_length=36, unique=True)
    due_on: dt.date
    completed_on: dt.date
    on_time: bool
    students: int
    counts_by_category: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
    completed_by: str = Field(max_length=100)


class SupportPlan(CaseworkModel, table=True):
    """一生一案 (kind ``student``) or 一家一案 (kind ``family``, registered-poor families)."""

    __tablename__ = "support_plans"
    __table_args__ = (UniqueConstraint("kind", "school_code", "subject"),)

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=8)
    school_code: str = Field(max_length=20, index=True)
    subject: str = Field(max_length=64, description="student id, or the family's reference")
    student_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    measures: list[str] = Field(default_factory=list, sa_type=JSON)
    mentor: str | None = Field(default=None, max_length=100)
    aid: str | None = Field(default=None, max_length=1000)
    review_on: dt.date = Field(index=True)
    version: int = 1
    field_versions: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
    created_by: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
