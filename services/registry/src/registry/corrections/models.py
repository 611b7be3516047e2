"""Hukou corrections from the police: deceased, moved out, duplicate registration, missing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, String
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from registry.database import RegistryModel


class HukouCorrection(RegistryModel, table=True):
    __tablename__ = "hukou_corrections"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    child_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=12)
    effective_date: dt.date = Field(sa_column=Column(Date, nullable=False))
    previous_status: str = Field(max_length=12)
    duplicate_of: str | None = Field(default=None, max_length=36)
    merge_id: int | None = None
    created_by: str = Field(max_length=100)
    created_org: str = Field(max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    undone_by: str | None = Field(default=None, max_length=100)
    undone_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
