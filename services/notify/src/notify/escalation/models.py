"""The escalation ladder of one dropout case (一人一案), and the history of its steps."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, Integer, String, Text, text
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from notify.database import NotifyModel

_ACTIVE = text("state = 'active'")


class Escalation(NotifyModel, table=True):
    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_case_state", "case_id", "state"),
        # One active ladder per case, kept by the database (migration 0018): a partial unique index on
        # both engines. The service also takes a lock on the case before reading its ladders
        # (repository.lock_case), so this refuses only what would slip past it.
        Index(
            "uq_escalations_active_case",
            "case_id",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        Index("ix_escalations_school", "school_code"),
        Index("ix_escalations_town", "hukou_town"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    case_id: str = Field(max_length=36)
    child_id: str | None = Field(default=None, max_length=36)
    school_code: str | None = Field(default=None, max_length=20)
    hukou_town: str | None = Field(default=None, max_length=12)
    reason: str | None = Field(default=None, max_length=40)
    level: str = Field(max_length=20)
    state: str = Field(default="active", max_length=12, description="active | resolved")
    resolution: str | None = Field(default=None, max_length=12)
    level_entered_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    level_deadline: dt.date = Field(sa_column=Column(Date, nullable=False))
    deadline_warnings: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    resolved_on: dt.date | None = Field(default=None, sa_column=Column(Date))
    episode_sequence: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            comment="the sequence of the case event the ladder serves: the one that started it, or a "
            "later request that lifted it",
        ),
    )
    """Which episode of the case the ladder belongs to, in the case's event order: a return, placement,
    closure or withdrawal stops the ladder only when it comes later than this event. None for a ladder
    started before it was kept."""
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, default=1))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class EscalationStep(NotifyModel, table=True):
    """One entry in the ladder's history: a level entered, an action taken, or the resolution."""

    __tablename__ = "escalation_steps"

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    escalation_id: str = Field(max_length=36, index=True)
    level: str = Field(max_length=20)
    kind: str = Field(max_length=20, description="entered | action | resolved")
    trigger: str = Field(
        max_length=20, description="confirmed | requested | lapsed | manual | returned | ..."
    )
    on: dt.date = Field(sa_column=Column(Date, nullable=False))
    deadline: dt.date | None = Field(default=None, sa_column=Column(Date))
    actor_org: str | None = Field(default=None, max_length=20)
    actor: str | None = Field(default=None, max_length=80)
    note: str | None = Field(default=None, max_length=500)
    document_id: str | None = Field(default=None, max_length=36)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class EpisodeEnd(NotifyModel, table=True):
    """The latest end of an episode of a case's escalation: the case event of the highest sequence that
    stops a ladder (casework's CaseReturned, CasePlaced, CaseClosed, EscalationWithdrawn), recorded
    whether or not a ladder was active when it arrived. A confirmation, relapse or request not later
    than it belongs to an episode that has ended (delivered late, or replayed from dead letters after
    the end arrived first): it starts and lifts nothing."""

    __tablename__ = "escalation_episode_ends"

    case_id: str = Field(sa_column=Column(String(36), primary_key=True))
    sequence: int = Field(
        sa_column=Column(Integer, nullable=False, comment="the case event sequence of the latest end")
    )
    resolution: str = Field(max_length=12, description="returned | placed | closed | withdrawn")
    ended_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
