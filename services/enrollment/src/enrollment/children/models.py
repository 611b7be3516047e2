"""The local read model of children, fed by the registry's ChildRegistered/ChildUpdated/ChildStatusChanged."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, String, Text
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from enrollment.database import EnrollmentModel


class ChildView(EnrollmentModel, table=True):
    """One child as the registry last described it (no names, no ID numbers: the blind index only)."""

    __tablename__ = "children"
    __table_args__ = (
        Index("ix_children_hukou_school_district", "hukou_school_district"),
        Index("ix_children_id_blind_index", "id_blind_index"),
        Index("ix_children_birth_date", "birth_date"),
    )

    child_id: str = Field(sa_column=Column(String(36), primary_key=True))
    id_blind_index: str | None = Field(default=None, sa_column=Column(String(80)))
    birth_date: dt.date | None = Field(default=None, sa_column=Column(Date))
    sex: str | None = Field(default=None, max_length=1)
    hukou_town: str | None = Field(default=None, max_length=12)
    hukou_village: str | None = Field(default=None, max_length=15)
    hukou_school_district: str | None = Field(default=None, max_length=14)
    categories: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    disability_type: str | None = Field(default=None, max_length=40)
    status: str = Field(default="active", max_length=20)
    merged_into: str | None = Field(default=None, max_length=36)
    sequence: int = 0
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
