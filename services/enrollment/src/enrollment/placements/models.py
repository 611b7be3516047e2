"""Placements of disabled children and the home-delivered teaching (送教上门) session log."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, String, Text, UniqueConstraint
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from enrollment.database import EnrollmentModel

PLACEMENT_MODES = ("regular_class", "special_school", "home_delivery", "remote", "institution_class")


class Placement(EnrollmentModel, table=True):
    __tablename__ = "placements"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    child_id: str = Field(max_length=36, index=True)
    mode: str = Field(max_length=20)
    receiving_school: str = Field(max_length=14)
    student_id: str = Field(foreign_key="student_records.id", max_length=36)
    teaching_plan: str = Field(sa_column=Column(Text, nullable=False))
    planned_sessions_per_term: int = 0
    hukou_school_district: str | None = Field(default=None, max_length=14)
    starts_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    ends_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class TeachingSession(EnrollmentModel, table=True):
    """One delivered home-teaching session (planned counts come from the placement, per term)."""

    __tablename__ = "teaching_sessions"
    __table_args__ = (UniqueConstraint("placement_id", "held_on"),)

    id: int | None = Field(default=None, primary_key=True)
    placement_id: str = Field(foreign_key="placements.id", max_length=36, index=True)
    term: str = Field(max_length=12)  # e.g. 2026-autumn
    held_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    teacher_ref: str = Field(max_length=100)
    minutes: int
