"""The blacklist of illegal schooling providers (国学班, 读经班, 私塾) with evidence, and the alerts raised
when a case points at one. Providers are institutions: their names are not personal data."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from notify.database import NotifyModel


class Provider(NotifyModel, table=True):
    __tablename__ = "blacklist_providers"
    __table_args__ = (Index("ix_blacklist_providers_town", "town"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    name: str = Field(max_length=100)
    match_key: str = Field(max_length=100, description="The name normalised for matching")
    kind: str = Field(max_length=20, description="guoxueban | dujingban | sishu | other")
    town: str | None = Field(default=None, max_length=12)
    location: str | None = Field(default=None, max_length=200, description="The institution's premises")
    status: str = Field(default="listed", max_length=12, description="listed | delisted")
    listed_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    listed_by: str = Field(max_length=80)
    listed_org: str = Field(max_length=20)
    delisted_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    delisting_reason: str | None = Field(default=None, max_length=200)
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, default=1))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ProviderEvidence(NotifyModel, table=True):
    __tablename__ = "blacklist_evidence"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    provider_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=30, description="inspection_record | photo | decision | report | other")
    description: str = Field(sa_column=Column(Text, nullable=False))
    reference: str | None = Field(default=None, max_length=200, description="archive / file reference")
    recorded_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    recorded_by: str = Field(max_length=80)
    recorded_org: str = Field(max_length=20)


class ProviderAlert(NotifyModel, table=True):
    __tablename__ = "blacklist_alerts"
    __table_args__ = (UniqueConstraint("provider_id", "case_id", name="uq_blacklist_alerts_provider_case"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    provider_id: str = Field(max_length=36)
    case_id: str = Field(max_length=36, index=True)
    matched_on: str = Field(max_length=20, description="whereabouts | reason")
    town: str | None = Field(default=None, max_length=12)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
