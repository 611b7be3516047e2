"""Feed batches (one delivery of one department for one period) and their staged rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Column, Date, Index, Integer, String, Text, UniqueConstraint, true
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from registry.database import RegistryModel


class FeedBatch(RegistryModel, table=True):
    """One submitted batch: validate-only (dry run) or commit. Counts only, no personal data."""

    __tablename__ = "feed_batches"
    __table_args__ = (
        Index("ix_feed_batches_dept_period", "department", "period"),
        Index("ix_feed_batches_content", "department", "period", "mode", "content_hash"),
        UniqueConstraint("department", "client_batch_id", "mode", name="uq_feed_batches_client_batch"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    department: str = Field(max_length=20)
    period: str = Field(max_length=7)
    mode: str = Field(max_length=10)
    source_format: str = Field(max_length=10)
    content_hash: str = Field(max_length=64)
    client_batch_id: str | None = Field(default=None, max_length=100)
    delivery_complete: bool = Field(
        default=True, sa_column=Column(Boolean, nullable=False, default=True, server_default=true())
    )
    """False: one part of the department's delivery for the period, more parts to follow (it lapses no
    flag: ``merge.lapse_flags``); True (the default): the batch completes the delivery."""
    status: str = Field(default="queued", max_length=20)
    error_code: str | None = Field(default=None, max_length=60)
    job_id: str | None = Field(default=None, max_length=36)
    rows_total: int = 0
    accepted: int = 0
    rejected: int = 0
    warnings: int = 0
    children_registered: int = 0
    children_updated: int = 0
    linked: int = 0
    review_items: int = 0
    submitted_by: str = Field(max_length=100)
    submitted_org: str = Field(max_length=32)
    submitted_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    completed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class FeedRow(RegistryModel, table=True):
    """One staged row of a batch: normalised values, outcome and reason codes.

    The original cells of a row with reason codes are kept encrypted (``raw_cipher``) for the error
    report; the ID number and the guardian phone only as cipher token and blind index.
    """

    __tablename__ = "feed_rows"
    __table_args__ = (Index("ix_feed_rows_blind", "id_blind"), Index("ix_feed_rows_child", "child_id"))

    batch_id: str = Field(sa_column=Column(String(36), primary_key=True))
    row_number: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    outcome: str = Field(max_length=10)
    reasons: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    raw_cipher: str | None = Field(default=None, sa_column=Column(Text))
    candidate_id: str = Field(max_length=36)
    child_id: str | None = Field(default=None, max_length=36)
    link: str | None = Field(default=None, max_length=12)
    id_blind: str | None = Field(default=None, max_length=80)
    id_cipher: str | None = Field(default=None, sa_column=Column(Text))
    name: str | None = Field(default=None, max_length=60)
    name_pinyin: str | None = Field(default=None, max_length=250)
    sex: str | None = Field(default=None, max_length=1)
    birth_date: dt.date | None = Field(default=None, sa_column=Column(Date))
    id_birth_date: dt.date | None = Field(default=None, sa_column=Column(Date))
    hukou_address: str | None = Field(default=None, max_length=200)
    hukou_town: str | None = Field(default=None, max_length=12)
    hukou_village: str | None = Field(default=None, max_length=15)
    hukou_school_district: str | None = Field(default=None, max_length=14)
    current_address: str | None = Field(default=None, max_length=200)
    guardian_name: str | None = Field(default=None, max_length=200)
    guardian_phone: str | None = Field(default=None, sa_column=Column(Text))
    """Encrypted (``PHONE_AAD``); compared through ``guardian_phone_blind``."""
    guardian_phone_blind: str | None = Field(default=None, max_length=80)
    categories: str = Field(default="", max_length=200)
    disability_type: str | None = Field(default=None, max_length=20)
    disability_grade: str | None = Field(default=None, max_length=4)
