"""The end-of-March and end-of-October dropout reports (辍学情况报告), frozen as generated."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, String, Text, UniqueConstraint
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from notify.database import NotifyModel


class DropoutReport(NotifyModel, table=True):
    """One generation of a period's report; a later generation is version n+1 (figures never change)."""

    __tablename__ = "dropout_reports"
    __table_args__ = (UniqueConstraint("period", "version", name="uq_dropout_reports_period_version"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    period: str = Field(max_length=7, description="YYYY-03 or YYYY-10")
    version: int
    window_start: dt.date = Field(sa_column=Column(Date, nullable=False))
    as_of: dt.date = Field(sa_column=Column(Date, nullable=False))
    final: bool = Field(description="False when generated before the period's end (provisional)")
    rows: str = Field(sa_column=Column(Text, nullable=False), description="JSON: per town and school")
    generated_by: str = Field(max_length=80)
    generated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
