"""Holiday arrangements loaded by an administrator (years the bundled calendar does not know yet)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Integer, Text
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from notify.database import NotifyModel


class CalendarArrangement(NotifyModel, table=True):
    """One year's State Council arrangement (国务院办公厅关于部分节假日安排的通知), as loaded."""

    __tablename__ = "calendar_arrangements"

    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    holidays: str = Field(sa_column=Column(Text, nullable=False), description="JSON list of YYYY-MM-DD")
    workdays: str = Field(sa_column=Column(Text, nullable=False), description="JSON list of YYYY-MM-DD")
    source: str = Field(max_length=200)
    loaded_by: str = Field(max_length=80)
    loaded_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
