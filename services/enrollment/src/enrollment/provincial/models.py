"""Checkpoints of the provincial platform synchronisation (one row per batch: idempotent and resumable)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, String, Text
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from enrollment.database import EnrollmentModel


class SyncBatch(EnrollmentModel, table=True):
    """A batch pulled from (import) or pushed to (push) the platform; applied at most once."""

    __tablename__ = "provincial_sync_batches"

    batch_id: str = Field(sa_column=Column(String(80), primary_key=True))
    direction: str = Field(max_length=8)  # import | push
    cursor_after: str | None = Field(default=None, sa_column=Column(Text))
    records: int = 0
    applied_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ProvincialRecord(EnrollmentModel, table=True):
    """What the platform shows for a child (by blind index): lets a task's 'enrolled elsewhere' be confirmed."""

    __tablename__ = "provincial_records"

    platform_record_id: str = Field(sa_column=Column(String(64), primary_key=True))
    id_blind_index: str = Field(max_length=80, index=True)
    school_code: str = Field(max_length=20)
    province_code: str = Field(max_length=2)
    status: str = Field(max_length=20)
    batch_id: str = Field(max_length=80)
