"""Tables of the case domain: the case, its signals, evidence, state history, attendance, care plan,
persuasion attempts and the dropout report."""

import datetime as dt

from sqlalchemy import JSON, Column, ForeignKey, String, Text, UniqueConstraint
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from casework.database import CaseworkModel


def _case_fk() -> Column:  # type: ignore[type-arg]
    return Column(String(36), ForeignKey("cases.id", ondelete="CASCADE"), nullable=False, index=True)


class Case(CaseworkModel, table=True):
    """One dropout case per child (一人一案).

    ``open_key`` holds the child's key while the case is open and NULL once it is closed; its unique
    constraint is what guarantees one open case per child, on SQLite and PostgreSQL alike.
    """

    __tablename__ = "cases"

    id: str = Field(primary_key=True, max_length=36)
    child_key: str = Field(max_length=80, index=True)
    open_key: str | None = Field(default=None, max_length=80, unique=True)
    child_id: str | None = Field(default=None, max_length=64, index=True)
    student_id: str | None = Field(default=None, max_length=64, index=True)
    id_blind_index: str | None = Field(default=None, max_length=128, index=True)
    id_number_enc: str | None = Field(default=None, max_length=300)
    school_code: str | None = Field(default=None, max_length=20, index=True)
    hukou_town: str | None = Field(default=None, max_length=12, index=True)
    hukou_school_district: str | None = Field(default=None, max_length=16, index=True)
    state: str = Field(max_length=16, index=True)
    reason: str | None = Field(default=None, max_length=32)
    analysis: str | None = Field(default=None, sa_type=Text)
    responsible_person: str | None = Field(default=None, max_length=100)
    planned_measures: list[str] = Field(default_factory=list, sa_type=JSON)
    opened_signal: str = Field(max_length=40)
    opened_on: dt.date
    signal_count: int = 1
    confirmed_on: dt.date | None = None
    report_due: dt.date | None = Field(default=None, index=True)
    reported_on: dt.date | None = None
    overdue_published: bool = False
    returned_on: dt.date | None = None
    placement_mode: str | None = Field(default=None, max_length=32)
    escalation_id: str | None = Field(default=None, max_length=64)
    escalation_level: str | None = Field(default=None, max_length=20)
    # The episode of the ladder the case follows (notify's EscalationEvent.episode: the sequence of the
    # case event that started or lifted it); None until a ladder's event carrying one arrives. Kept on
    # reopening: a later episode's ladder has a higher one, an earlier episode's late events a lower one.
    escalation_episode: int | None = None
    closed_on: dt.date | None = None
    closure_reason: str | None = Field(default=None, max_length=20)
    watch_until: dt.date | None = None
    reopen_count: int = 0
    version: int = 1
    field_versions: dict[str, int] = Field(default_factory=dict, sa_type=JSON)
    created_by: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


SCHOOL_REPORT = "school_report"
"""The signal a school records when it opens a case by hand; every other signal is enrollment's."""


class CaseSignal(CaseworkModel, table=True):
    """A dropout signal attached to a case (the first one opened it)."""

    __tablename__ = "case_signals"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(sa_column=_case_fk())
    signal_id: str = Field(max_length=64, unique=True)
    signal: str = Field(max_length=40)
    detected_on: dt.date
    effect: str = Field(max_length=12)  # opened | attached | reopened | recorded (detected before closure)
    received_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CaseTransition(CaseworkModel, table=True):
    """The state history of a case."""

    __tablename__ = "case_transitions"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(sa_column=_case_fk())
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    on: dt.date
    by: str = Field(max_length=100)
    note: str | None = Field(default=None, max_length=500)
    at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CaseEvidence(CaseworkModel, table=True):
    """Evidence a school attaches to an escalation request (file hashes, not files)."""

    __tablename__ = "case_evidence"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(sa_column=_case_fk())
    kind: str = Field(max_length=32)
    description: str = Field(max_length=500)
    file_hash: str | None = Field(default=None, max_length=128)
    recorded_on: dt.date
    created_by: str = Field(max_length=100)


class AttendanceConfirmation(CaseworkModel, table=True):
    """The school confirms that a returned child attended on ``days_attended`` school days in a period."""

    __tablename__ = "attendance_confirmations"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(sa_column=_case_fk())
    from_date: dt.date
    to_date: dt.date
    days_attended: int
    confirmed_by: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CarePlan(CaseworkModel, table=True):
    """Follow-up care for a returned student: academic help, counselling, family care."""

    __tablename__ = "care_plans"

    case_id: str = Field(
        sa_column=Column(String(36), ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    )
    academic_help: str | None = Field(default=None, max_length=1000)
    counselling: str | None = Field(default=None, max_length=1000)
    family_care: str | None = Field(default=None, max_length=1000)
    mentor: str | None = Field(default=None, max_length=100)
    review_on: dt.date | None = None
    version: int = 1
    updated_by: str = Field(max_length=100)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PersuasionAttempt(CaseworkModel, table=True):
    """One persuasion attempt (劝返) on a case."""

    __tablename__ = "persuasion_attempts"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(sa_column=_case_fk())
    attempted_on: dt.date
    by: str = Field(max_length=100)
    form: str = Field(max_length=24)
    outcome: str = Field(max_length=24)
    notes: str | None = Field(default=None, max_length=2000)
    next_step: str | None = Field(default=None, max_length=500)
    next_step_on: dt.date | None = None
    created_by: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CaseReport(CaseworkModel, table=True):
    """The school's dropout report on a confirmed case, filed to the town and the bureau: one per episode
    of the case (``episode`` is the case's ``reopen_count`` when the report was filed), so a case that a
    relapse reopened and that is confirmed again files a report of its own."""

    __tablename__ = "case_reports"
    __table_args__ = (UniqueConstraint("case_id", "episode"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(sa_column=_case_fk())
    episode: int = 0
    basic_info: str = Field(sa_type=Text)
    reason: str = Field(max_length=32)
    measures: str = Field(sa_type=Text)
    result: str = Field(sa_type=Text)
    town_code: str | None = Field(default=None, max_length=12)
    bureau_code: str = Field(max_length=12)
    filed_on: dt.date
    report_due: dt.date
    on_time: bool
    filed_by: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
