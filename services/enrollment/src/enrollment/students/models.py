"""Student records (学籍), their transfers, and incapacity annotations. Nothing here is ever deleted."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, Integer, String, Text, text
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from enrollment.database import EnrollmentModel

# Statuses in which a record is "active": at most one such record per child (the database says so).
ACTIVE_STATUSES = ("enrolled", "suspended")
_ACTIVE_WHERE = text("status IN ('enrolled', 'suspended')")
# Local records whose current version the provincial platform has not acknowledged (the push's work list).
PUSH_PENDING_WHERE = text("source = 'local' AND pushed_version <> version")


class StudentRecord(EnrollmentModel, table=True):
    """One 学籍. The student number and ID number are stored encrypted; found through blind indexes."""

    __tablename__ = "student_records"
    __table_args__ = (
        # One child, one active record: a partial unique index on both engines.
        Index(
            "uq_student_records_active_child",
            "id_blind_index",
            unique=True,
            sqlite_where=_ACTIVE_WHERE,
            postgresql_where=_ACTIVE_WHERE,
        ),
        Index("ix_student_records_school_code", "school_code"),
        Index("ix_student_records_hukou_school_district", "hukou_school_district"),
        Index("ix_student_records_child_id", "child_id"),
        # Records not yet linked to a child, by blind index: what a ChildRegistered links (one look-up
        # per event, or one join per batch), instead of a scan of every record.
        Index(
            "ix_student_records_unlinked_blind_index",
            "id_blind_index",
            sqlite_where=text("child_id IS NULL"),
            postgresql_where=text("child_id IS NULL"),
        ),
        # What the provincial push has still to send, by id (its page order): the pending records only.
        Index(
            "ix_student_records_push_pending",
            "id",
            sqlite_where=PUSH_PENDING_WHERE,
            postgresql_where=PUSH_PENDING_WHERE,
        ),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    student_number_kind: str = Field(max_length=1)
    student_number_enc: str = Field(sa_column=Column(Text, nullable=False))
    student_number_index: str = Field(sa_column=Column(String(80), nullable=False, unique=True))
    id_number_enc: str = Field(sa_column=Column(Text, nullable=False))
    id_blind_index: str = Field(sa_column=Column(String(80), nullable=False))
    child_id: str | None = Field(default=None, max_length=36)
    school_code: str = Field(max_length=14)
    hukou_school_district: str | None = Field(default=None, max_length=14)
    grade: int
    status: str = Field(default="enrolled", max_length=20)
    status_since: dt.date = Field(sa_column=Column(Date, nullable=False))
    status_reason: str | None = Field(default=None, max_length=40)
    suspended_until: dt.date | None = Field(default=None, sa_column=Column(Date))
    suspension_extended: bool = False
    source: str = Field(default="local", max_length=20)
    version: int = 1
    # The version the provincial platform last acknowledged (0: never pushed). Every status change
    # bumps ``version`` under the row lock, so ``pushed_version <> version`` is "changed since the push",
    # whatever order transactions commit in (``updated_at`` is the writer's clock, not the commit order).
    pushed_version: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class StudentTransfer(EnrollmentModel, table=True):
    """A transfer (转学): approved by the sending and the receiving school, completed within a limit."""

    __tablename__ = "student_transfers"
    __table_args__ = (Index("ix_student_transfers_state_due", "state", "due_on"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    student_id: str = Field(foreign_key="student_records.id", max_length=36, index=True)
    from_school: str = Field(max_length=14)
    to_school: str = Field(max_length=14)
    requested_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    due_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    sending_approved_by: str | None = Field(default=None, max_length=100)
    receiving_approved_by: str | None = Field(default=None, max_length=100)
    # requested, hanging (open); completed, rejected, cancelled (closed)
    state: str = Field(default="requested", max_length=20)
    hanging_since: dt.date | None = Field(default=None, sa_column=Column(Date))
    completed_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    # Why and when an open transfer was cancelled: its record was closed meanwhile (``student_dropped_out``,
    # ``student_graduated``, ``student_deceased`` …: ``student_`` + the record's new status).
    closed_reason: str | None = Field(default=None, max_length=40)
    closed_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    version: int = 1


class IncapacityAnnotation(EnrollmentModel, table=True):
    """A child assessed as incapable of receiving education (鉴定): who assessed, on what evidence, until when."""

    __tablename__ = "incapacity_annotations"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    student_id: str = Field(foreign_key="student_records.id", max_length=36, index=True)
    school_code: str = Field(max_length=14)
    assessing_body: str = Field(max_length=100)
    evidence_ref: str = Field(max_length=200)
    assessed_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    reassess_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    created_by: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    pushed_to_platform_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
