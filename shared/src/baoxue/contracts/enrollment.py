"""Events published by the enrollment service (subjects ``<namespace>.enrollment.<aggregate>.<event>``)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from baoxue.events.envelope import EventData

StudentStatus = Literal["enrolled", "suspended", "transferred_out", "dropped_out", "graduated", "deceased"]
DropoutSignal = Literal[
    "dropped_out_status",
    "absence_four_weeks",
    "suspension_expired",
    "transfer_hanging",
    "vocational_unconfirmed",
    "vocational_lost",
    "verification_not_in_school",
]


class EnrollmentEvent(EventData):
    """Base of enrollment's events."""

    service: ClassVar[str] = "enrollment"


class StudentRecordEvent(EnrollmentEvent):
    aggregate: ClassVar[str] = "student"
    student_id: str
    child_id: str | None = None
    id_blind_index: str | None = None
    school_code: str
    grade: int | None = None
    status: StudentStatus


class StudentRegistered(StudentRecordEvent):
    event: ClassVar[str] = "registered"


class StudentStatusChanged(StudentRecordEvent):
    event: ClassVar[str] = "status_changed"
    previous_status: StudentStatus
    reason: str | None = None


class StudentLinked(EnrollmentEvent):
    """A student record registered before its child was known is now linked to the registry's child.

    Published once per record when it gets its ``child_id`` (the registry's snapshot arrived after
    the registration); consumers holding the record or a case opened from it learn the child id.
    Surrogate ids and organisation codes only.
    """

    aggregate: ClassVar[str] = "student"
    event: ClassVar[str] = "linked"
    student_id: str
    child_id: str
    school_code: str
    status: StudentStatus
    hukou_school_district: str | None = None


class DeferralExpired(EnrollmentEvent):
    """A decided deferral (缓学) or exemption (免学) reached its end date: the child is expected at school."""

    aggregate: ClassVar[str] = "deferral"
    event: ClassVar[str] = "expired"
    deferral_id: str
    kind: Literal["deferral", "exemption"]
    child_id: str | None = None
    hukou_school_district: str | None = None
    ended_on: dt.date


class DropoutSuspected(EnrollmentEvent):
    """A signal that a child may have dropped out; casework opens (or attaches to) the child's case."""

    aggregate: ClassVar[str] = "signal"
    event: ClassVar[str] = "dropout_suspected"
    signal_id: str
    signal: DropoutSignal
    child_id: str | None = None
    student_id: str | None = None
    id_blind_index: str | None = None
    school_code: str | None = None
    hukou_town: str | None = None
    hukou_school_district: str | None = None
    detected_on: dt.date


class ChildUnaccounted(EnrollmentEvent):
    """A verification run found a child it cannot explain: a task for the hukou place's school district.
    Published again for the same task (a later sequence: the task's version) when a run moves it to the
    school district of the child's new hukou place, or reopens it after it was superseded
    (VerificationTaskSuperseded): the district named is the task's owner from then on."""

    aggregate: ClassVar[str] = "task"
    event: ClassVar[str] = "child_unaccounted"
    task_id: str
    campaign_id: str
    child_id: str
    hukou_town: str | None = None
    hukou_school_district: str
    due_date: dt.date


class VerificationTaskSuperseded(EnrollmentEvent):
    """A verification run found the child of an unresolved task explained (a new record, feed, placement
    or application): the task is superseded and nobody owes its verification any more. Published at the
    task's version after the run (the envelope's sequence). A later run finding the child unaccounted
    again reopens the task: a ChildUnaccounted at a later sequence. Surrogate ids and codes only."""

    aggregate: ClassVar[str] = "task"
    event: ClassVar[str] = "superseded"
    task_id: str
    campaign_id: str
    hukou_school_district: str


class VerificationTaskResolved(EnrollmentEvent):
    """The task's school district established where the child is. ``resolved_on`` is the day the
    resolution states (earlier than the day it was recorded for work done offline, never later);
    ``on_time`` is judged on the server's day (China's) against the task's due day, not on the stated
    day (on the demo's stack, ``ENROLLMENT_SIMULATION``, on the stated day)."""

    aggregate: ClassVar[str] = "task"
    event: ClassVar[str] = "resolved"
    task_id: str
    campaign_id: str
    child_id: str
    outcome: str
    hukou_school_district: str
    resolved_on: dt.date
    on_time: bool
    due_date: dt.date | None = None
    """The task's due day (absent in events published before it was added)."""


class CampaignCompleted(EnrollmentEvent):
    """A verification campaign's result was frozen (the bulletin is built from these figures)."""

    aggregate: ClassVar[str] = "campaign"
    event: ClassVar[str] = "completed"
    campaign_id: str
    kind: Literal["september_verification", "november_comparison"]
    year: int
    as_of: dt.date
    result_version: int
    children_in_scope: int
    counts_by_outcome: dict[str, int]
    counts_by_town: dict[str, dict[str, int]]
    tasks_total: int = 0
    tasks_open: int = 0
