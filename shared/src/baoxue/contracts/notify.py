"""Events published by the notify service (subjects ``<namespace>.notify.<aggregate>.<event>``)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from baoxue.events.envelope import EventData

EscalationLevel = Literal["L1_school", "L2_town_order", "L3_judicial", "L4_legal_action"]


class NotifyEvent(EventData):
    """Base of notify's events."""

    service: ClassVar[str] = "notify"


class NoticeEvent(NotifyEvent):
    aggregate: ClassVar[str] = "notice"
    notice_id: str
    number: str
    kind: str
    issuing_org: str
    recipient_org: str | None = None
    case_id: str | None = None


class NoticeIssued(NoticeEvent):
    event: ClassVar[str] = "issued"


class NoticeDelivered(NoticeEvent):
    event: ClassVar[str] = "delivered"
    channel: str


class NoticeAcknowledged(NoticeEvent):
    event: ClassVar[str] = "acknowledged"
    acknowledged_on: dt.date


class EscalationEvent(NotifyEvent):
    """A step of a case's escalation ladder.

    ``episode`` is the sequence of the case's event that started this ladder (the casework envelope
    sequence of its CaseConfirmed, CaseRelapsed or EscalationRequested, or of a later request that lifted
    it); None from ladders before it was recorded. Casework ignores a step whose episode is lower than
    the one of the ladder its case follows (the end of an earlier episode, arriving late or replayed).
    Optional and additive: the type stays v1, and an event without it reads as before.
    """

    aggregate: ClassVar[str] = "escalation"
    escalation_id: str
    case_id: str
    level: EscalationLevel
    deadline: dt.date | None = None
    episode: int | None = None


class EscalationRaised(EscalationEvent):
    event: ClassVar[str] = "raised"


class EscalationAdvanced(EscalationEvent):
    event: ClassVar[str] = "advanced"
    from_level: EscalationLevel


class EscalationResolved(EscalationEvent):
    event: ClassVar[str] = "resolved"
    resolution: Literal["returned", "placed", "withdrawn", "closed"]


class DeadlineLapsed(NotifyEvent):
    aggregate: ClassVar[str] = "deadline"
    event: ClassVar[str] = "lapsed"
    deadline_id: str
    kind: str
    org: str
    subject_id: str | None = None
    due_date: dt.date
