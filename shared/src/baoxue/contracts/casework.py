"""Events published by the casework service (subjects ``<namespace>.casework.<aggregate>.<event>``)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from baoxue.events.envelope import EventData

CaseState = Literal["suspected", "confirmed", "persuading", "returned", "placed", "escalated", "closed"]


class CaseworkEvent(EventData):
    """Base of casework's events."""

    service: ClassVar[str] = "casework"


class CaseEvent(CaseworkEvent):
    aggregate: ClassVar[str] = "case"
    case_id: str
    child_id: str | None = None
    school_code: str | None = None
    hukou_town: str | None = None
    state: CaseState
    reason: str | None = None


class CaseOpened(CaseEvent):
    event: ClassVar[str] = "opened"
    signal: str


class CaseConfirmed(CaseEvent):
    event: ClassVar[str] = "confirmed"
    report_due: dt.date


class CaseReported(CaseEvent):
    event: ClassVar[str] = "reported"
    reported_on: dt.date
    on_time: bool


class CaseReportOverdue(CaseEvent):
    event: ClassVar[str] = "report_overdue"
    report_due: dt.date


class EscalationRequested(CaseEvent):
    """Guardians refuse: the school asks the town to act (the ladder starts at L2)."""

    event: ClassVar[str] = "escalation_requested"
    evidence_count: int
    guardian_refusal: bool = True


class EscalationWithdrawn(CaseEvent):
    """The school takes an escalated case back to persuasion (escalated → persuading): the ladder stops
    (notify resolves it as withdrawn). Not published when the case went back because the ladder itself
    was resolved (notify's own outcome)."""

    event: ClassVar[str] = "escalation_withdrawn"


class CaseReturned(CaseEvent):
    event: ClassVar[str] = "returned"
    returned_on: dt.date


class CaseRelapsed(CaseEvent):
    """A child who returned stopped attending again before the case was closed (returned → persuading):
    the return no longer counts, and persuasion starts over on the same open case as a new episode
    (notify counts the child as not returned and starts the episode's ladder). ``relapsed_on`` is the
    date the move records. A closed case's relapse is CaseReopened."""

    event: ClassVar[str] = "relapsed"
    relapsed_on: dt.date


class CasePlaced(CaseEvent):
    event: ClassVar[str] = "placed"
    placement_mode: str | None = None


class CaseClosed(CaseEvent):
    event: ClassVar[str] = "closed"
    closure_reason: str


class CaseReopened(CaseEvent):
    event: ClassVar[str] = "reopened"
    signal: str


class VisitRecorded(CaseworkEvent):
    aggregate: ClassVar[str] = "visit"
    event: ClassVar[str] = "recorded"
    visit_id: str
    child_id: str | None = None
    student_id: str | None = None
    school_code: str
    teacher: str
    semester: str
    visited_on: dt.date
    special_group: bool = False


class RosterSet(CaseworkEvent):
    """A school's roster of a semester was replaced: how many students it lists and how many of them are
    in a special group (a category with a visit quota). Counts only; the envelope's subject is
    ``<school_code>:<semester>`` and its sequence the roster's version (a newer roster wins)."""

    aggregate: ClassVar[str] = "roster"
    event: ClassVar[str] = "set"
    school_code: str
    semester: str
    students: int
    special_group_students: int


class CensusCompleted(CaseworkEvent):
    aggregate: ClassVar[str] = "census"
    event: ClassVar[str] = "completed"
    census_id: str
    school_code: str
    semester: str
    completed_on: dt.date
    on_time: bool
    counts_by_category: dict[str, int]
