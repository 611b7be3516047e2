"""Verification campaigns (September 核查, November comparison), their per-child results, and tasks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from enrollment.database import EnrollmentModel


class Campaign(EnrollmentModel, table=True):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("kind", "year"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    kind: str = Field(max_length=30)  # september_verification | november_comparison
    year: int
    as_of: dt.date = Field(sa_column=Column(Date, nullable=False))
    cutoff_date: dt.date = Field(sa_column=Column(Date, nullable=False))
    deadline: dt.date = Field(sa_column=Column(Date, nullable=False))
    rule_set_version: str = Field(max_length=20)
    district_code: str = Field(max_length=14)
    """Owner of tasks for children whose hukou school district is unknown (the bureau's district)."""
    state: str = Field(default="open", max_length=12)  # open | running | frozen
    runs: int = 0
    last_run_job: str | None = Field(default=None, max_length=36)
    result_version: int = 0
    """The latest frozen result's version (0: never frozen); every version is kept in ``campaign_results``."""
    frozen_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    refresh_requested_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    """Set when a department feed was applied after the last run: the refresher runs the campaign again."""
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class CampaignResult(EnrollmentModel, table=True):
    """One frozen result of a campaign, kept for good: a freeze adds the next version (the bulletin of
    each version stays reproducible), never overwrites one."""

    __tablename__ = "campaign_results"

    campaign_id: str = Field(sa_column=Column(String(36), ForeignKey("campaigns.id"), primary_key=True))
    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    result: str = Field(sa_column=Column(Text, nullable=False))
    """The CampaignCompleted event's figures plus the town × school district breakdown (JSON)."""
    frozen_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class VerificationResult(EnrollmentModel, table=True):
    """The run's classification of one child in scope: outcome, the rule that decided it, the evidence."""

    __tablename__ = "verification_results"
    # Only the unaccounted few are looked up by outcome: a partial index keeps the bulk insert cheap.
    # PostgreSQL: one partition per campaign (migration 0004), which a run replaces with a fresh table
    # (classify.classify_and_swap_postgresql); SQLite: one table.
    __table_args__ = (
        Index(
            "ix_verification_results_unaccounted",
            "campaign_id",
            "child_id",
            sqlite_where=text("outcome = 'unaccounted'"),
            postgresql_where=text("outcome = 'unaccounted'"),
        ),
        {"postgresql_partition_by": "LIST (campaign_id)"},
    )

    campaign_id: str = Field(sa_column=Column(String(36), primary_key=True))
    child_id: str = Field(sa_column=Column(String(36), primary_key=True))
    outcome: str = Field(max_length=30)  # a verification outcome code, or 'unaccounted'
    rule: str = Field(max_length=40)
    evidence: str | None = Field(default=None, max_length=80)  # e.g. student:<id>, deferral:<id>
    hukou_town: str | None = Field(default=None, max_length=12)
    hukou_school_district: str | None = Field(default=None, max_length=14)
    run: int


class VerificationTask(EnrollmentModel, table=True):
    """An unaccounted child: the hukou place's school district finds out where the child is."""

    __tablename__ = "verification_tasks"
    __table_args__ = (
        UniqueConstraint("campaign_id", "child_id"),
        Index("ix_verification_tasks_district_state", "hukou_school_district", "state"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    campaign_id: str = Field(max_length=36, index=True)
    child_id: str = Field(max_length=36)
    hukou_town: str | None = Field(default=None, max_length=12)
    hukou_school_district: str = Field(max_length=14)
    due_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    state: str = Field(default="open", max_length=24)  # open | awaiting_confirmation | resolved | superseded
    outcome: str | None = Field(default=None, max_length=30)
    evidence: str | None = Field(default=None, sa_column=Column(Text))
    enrolling_org: str | None = Field(default=None, max_length=20)
    confirmed_by: str | None = Field(default=None, max_length=100)
    resolved_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    created_run: int
    published: bool = False
    version: int = 1
