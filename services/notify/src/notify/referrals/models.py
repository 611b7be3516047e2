"""Inter-department notices and referrals (measure 8 and the enforcement the notice assigns to other
departments), each with a receipt and an outcome tracked to closure."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, String, Text
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from notify.database import NotifyModel


class Referral(NotifyModel, table=True):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_to_org_status", "to_org", "status"),
        Index("ix_referrals_subject", "kind", "subject_id", "to_org", unique=True),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    kind: str = Field(max_length=30)
    subject_id: str = Field(
        max_length=80, description="case id, child id (hukou clean-up) or venue report id"
    )
    case_id: str | None = Field(default=None, max_length=36)
    child_id: str | None = Field(default=None, max_length=36)
    from_org: str = Field(max_length=20)
    to_org: str = Field(max_length=20)
    required_action: str = Field(max_length=60)
    details: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default="sent", max_length=12, description="sent | received | closed")
    received_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    received_by: str | None = Field(default=None, max_length=80)
    outcome: str | None = Field(default=None, max_length=30)
    outcome_note: str | None = Field(default=None, max_length=500)
    closed_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
