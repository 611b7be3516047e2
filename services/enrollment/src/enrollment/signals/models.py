"""Dropout signals raised by this service, and the absence reports schools send in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, String
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from enrollment.database import EnrollmentModel


class DropoutSignalRecord(EnrollmentModel, table=True):
    """One suspected dropout. ``dedupe_key`` makes every detector idempotent (a sweep re-run raises nothing new)."""

    __tablename__ = "dropout_signals"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    dedupe_key: str = Field(sa_column=Column(String(120), nullable=False, unique=True))
    signal: str = Field(max_length=40, index=True)
    child_id: str | None = Field(default=None, max_length=36)
    student_id: str | None = Field(default=None, max_length=36)
    school_code: str | None = Field(default=None, max_length=14)
    hukou_school_district: str | None = Field(default=None, max_length=14)
    detected_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class AbsenceReportBatch(EnrollmentModel, table=True):
    """A school's absence report batch, received once: the batch id is the school's own, so the key is
    (school_code, batch_id) — two schools may both call their batch "2026-W41"."""

    __tablename__ = "absence_reports"

    school_code: str = Field(sa_column=Column(String(14), primary_key=True))
    batch_id: str = Field(sa_column=Column(String(64), primary_key=True))
    reported_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    lines: int


class AbsenceReportLine(EnrollmentModel, table=True):
    """One student's unexcused absence as of a school's weekly report."""

    __tablename__ = "absence_report_lines"

    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(max_length=64, index=True)
    school_code: str = Field(max_length=14)
    student_id: str = Field(max_length=36, index=True)
    reported_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    unexcused_since: dt.date = Field(sa_column=Column(Date, nullable=False))
    unexcused_days: int


class VocationalLeaver(EnrollmentModel, table=True):
    """A junior-3 spring leaver sent to a vocational school: the record there must be confirmed in time."""

    __tablename__ = "vocational_leavers"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    student_id: str = Field(max_length=36, index=True)
    from_school: str = Field(max_length=14)
    vocational_school: str = Field(max_length=14)
    left_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    confirm_by: dt.date = Field(sa_column=Column(Date, nullable=False))
    state: str = Field(default="pending", max_length=12)  # pending | confirmed | lost | overdue
    closed_on: dt.date | None = Field(default=None, sa_column=Column(Date))
