"""Deadlines per organisation: opened from events or the statutory calendar, closed by events, swept."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from notify.database import NotifyModel


class Deadline(NotifyModel, table=True):
    """Something `org` must do by `due_date` (a working-day date when counted in working days)."""

    __tablename__ = "deadlines"
    __table_args__ = (
        UniqueConstraint("kind", "org", "subject_id", name="uq_deadlines_kind_org_subject"),
        Index("ix_deadlines_status_due", "status", "due_date"),
        Index("ix_deadlines_org", "org"),
        Index("ix_deadlines_subject", "subject_id"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    kind: str = Field(max_length=40, description="code list deadline_kind")
    org: str = Field(max_length=20, description="The organisation that must act.")
    subject_id: str = Field(max_length=80, description="Task, case, escalation:level, or the period.")
    case_id: str | None = Field(default=None, max_length=36)
    due_date: dt.date = Field(sa_column=Column(Date, nullable=False))
    warnings: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default="open", max_length=12, description="open | met | lapsed | cancelled")
    reminded_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    closed_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    on_time: bool | None = None
    sequence: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            comment="the sequence of the latest event of the subject applied (verification_task: the "
            "task's version); an event of the subject not after it is stale",
        ),
    )
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
