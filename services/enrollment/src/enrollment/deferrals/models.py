"""Deferral (缓学 / 延缓入学) and exemption (免学 / 免于入学) applications."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, Integer, String, Text
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from enrollment.database import EnrollmentModel


class DeferralApplication(EnrollmentModel, table=True):
    """Filed for a child by or for the guardian, decided by the bureau, valid for a period."""

    __tablename__ = "deferral_applications"
    __table_args__ = (Index("ix_deferral_applications_child_state", "child_id", "state"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    child_id: str = Field(max_length=36)
    kind: str = Field(max_length=12)  # deferral | exemption
    reason: str = Field(max_length=40)
    evidence: str = Field(sa_column=Column(Text, nullable=False))  # newline-separated document references
    filed_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    filed_by_org: str = Field(max_length=14)
    hukou_school_district: str | None = Field(default=None, max_length=14)
    state: str = Field(default="filed", max_length=12)  # filed | approved | rejected
    decided_by: str | None = Field(default=None, max_length=100)
    decided_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    valid_from: dt.date | None = Field(default=None, sa_column=Column(Date))
    valid_until: dt.date | None = Field(default=None, sa_column=Column(Date))
    # The day the sweep found the approved period over and published DeferralExpired (once).
    expired_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
