"""District bulletins (通报) built from enrollment's frozen campaign results, and the facts the
scorecards are computed from (cases and home visits as casework reported them)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from notify.database import NotifyModel


class Bulletin(NotifyModel, table=True):
    """One frozen campaign result, stored exactly as the CampaignCompleted event stated it."""

    __tablename__ = "bulletins"
    __table_args__ = (
        UniqueConstraint("campaign_id", "result_version", name="uq_bulletins_campaign_version"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    campaign_id: str = Field(max_length=36)
    kind: str = Field(max_length=30)
    year: int
    as_of: dt.date = Field(sa_column=Column(Date, nullable=False))
    result_version: int
    children_in_scope: int
    counts_by_outcome: str = Field(sa_column=Column(Text, nullable=False))
    counts_by_town: str = Field(sa_column=Column(Text, nullable=False))
    tasks_total: int = 0
    tasks_open: int = 0
    published_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    published_by: str | None = Field(default=None, max_length=80)
    received_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class CaseFact(NotifyModel, table=True):
    """A dropout case as notify needs it for scorecards (no personal data).

    A return, a reopening and a relapse keep the sequence of their event beside their date: the events'
    order, not their dates, tells which episode a return belongs to (a return is dated when the child came
    back, possibly before the reopening was recorded)."""

    __tablename__ = "case_facts"
    __table_args__ = (Index("ix_case_facts_school", "school_code"), Index("ix_case_facts_town", "hukou_town"))

    case_id: str = Field(sa_column=Column(String(36), primary_key=True))
    school_code: str | None = Field(default=None, max_length=20)
    hukou_town: str | None = Field(default=None, max_length=12)
    reason: str | None = Field(default=None, max_length=40)
    state: str = Field(max_length=20)
    opened_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    confirmed_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    escalated_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    returned_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    reopened_on: dt.date | None = Field(
        default=None, sa_column=Column(Date, comment="the latest reopening by a new signal (relapse)")
    )
    returned_sequence: int | None = Field(
        default=None,
        sa_column=Column(Integer, comment="the case event sequence of the return in returned_on"),
    )
    reopened_sequence: int | None = Field(
        default=None,
        sa_column=Column(Integer, comment="the case event sequence of the reopening in reopened_on"),
    )
    relapsed_on: dt.date | None = Field(
        default=None,
        sa_column=Column(
            Date, comment="the latest relapse of a returned child before closure (returned -> persuading)"
        ),
    )
    relapsed_sequence: int | None = Field(
        default=None,
        sa_column=Column(Integer, comment="the case event sequence of the relapse in relapsed_on"),
    )
    sequence: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))


class CensusFact(NotifyModel, table=True):
    """A school's special-needs census of a semester (casework's CensusCompleted): the largest category
    count is a lower bound of its special-group students (a student may fall in several categories)."""

    __tablename__ = "census_facts"

    school_code: str = Field(sa_column=Column(String(20), primary_key=True))
    semester: str = Field(sa_column=Column(String(20), primary_key=True))
    census_id: str = Field(max_length=36)
    special_students_at_least: int = 0
    counts_by_category: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class RosterFact(NotifyModel, table=True):
    """A school's roster of a semester (casework's RosterSet): how many students it lists and how many of
    them are in a special group. The event with the highest sequence wins."""

    __tablename__ = "roster_facts"

    school_code: str = Field(sa_column=Column(String(20), primary_key=True))
    semester: str = Field(sa_column=Column(String(20), primary_key=True))
    students: int = 0
    special_group_students: int = 0
    sequence: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))


class VisitFact(NotifyModel, table=True):
    """A home visit recorded by casework (for visit coverage per school and semester)."""

    __tablename__ = "visit_facts"
    __table_args__ = (Index("ix_visit_facts_school_semester", "school_code", "semester"),)

    visit_id: str = Field(sa_column=Column(String(36), primary_key=True))
    school_code: str = Field(max_length=20)
    semester: str = Field(max_length=20)
    student_key: str | None = Field(default=None, max_length=36, description="student or child surrogate id")
    visited_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    special_group: bool = False
