"""Event handlers of the case domain: enrollment's dropout signals, notify's escalation ladder, the
registry's exclusions. They call the same service functions as the routes."""

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.concurrency import bump_version
from baoxue.contracts.enrollment import DropoutSuspected, StudentLinked
from baoxue.contracts.notify import EscalationEvent, EscalationResolved
from baoxue.contracts.registry import ChildStatusChanged
from baoxue.events.consumer import PermanentEventError, ReceivedEvent
from baoxue.service import ServiceContext
from casework.cases import repository as repo
from casework.cases.models import Case
from casework.cases.schemas import TransitionRequest
from casework.cases.service import Signal, receive_signal
from casework.cases.transitions import EXCLUDING_REGISTRY_STATUSES, apply_transition
from casework.readmodels.repository import link_student, upsert_registry_status

log = logging.getLogger(__name__)

LEVEL_ORDER = ("L1_school", "L2_town_order", "L3_judicial", "L4_legal_action")
# notify's resolution → the case's next state (withdrawn/closed ladders hand the case back to the school).
RESOLUTION_STATE = {
    "returned": "returned",
    "placed": "placed",
    "withdrawn": "persuading",
    "closed": "persuading",
}


def make_handlers(ctx: ServiceContext) -> dict[str, Any]:
    async def on_dropout_suspected(session: AsyncSession, event: ReceivedEvent[DropoutSuspected]) -> None:
        d = event.data
        if not (d.child_id or d.student_id or d.id_blind_index):
            raise PermanentEventError("signal_without_child")
        signal = Signal(
            signal_id=d.signal_id,
            signal=d.signal,
            detected_on=d.detected_on,
            child_id=d.child_id,
            student_id=d.student_id,
            id_blind_index=d.id_blind_index,
            school_code=d.school_code,
            hukou_town=d.hukou_town,
            hukou_school_district=d.hukou_school_district,
            places_child=True,
        )
        await receive_signal(session=session, ctx=ctx, signal=signal, actor="enrollment")

    async def on_student_linked(session: AsyncSession, event: ReceivedEvent[StudentLinked]) -> None:
        d = event.data
        await link_student(
            session,
            student_id=d.student_id,
            child_id=d.child_id,
            school_code=d.school_code,
            status=d.status,
            sequence=event.envelope.sequence,
        )
        cases = await repo.fill_child_id(session, student_id=d.student_id, child_id=d.child_id)
        if cases:
            log.info("cases linked to their child", extra={"cases": len(cases)})

    def stale_ladder(case: Case, data: EscalationEvent) -> bool:
        """Whether the event belongs to a ladder of an earlier episode than the one the case follows: its
        episode is lower than the case's known one. Such an event (the end or a step of an earlier
        episode's ladder, delivered late or replayed from dead letters) is logged and ignored entirely."""
        episode = data.episode
        if episode is None or case.escalation_episode is None or episode >= case.escalation_episode:
            return False
        log.info(
            "escalation event of an earlier episode ignored",
            extra={
                "case_id": case.id,
                "escalation_id": data.escalation_id,
                "event_type": type(data).__name__,
                "episode": episode,
                "case_episode": case.escalation_episode,
            },
        )
        return True

    def follow_ladder(case: Case, data: EscalationEvent) -> list[str]:
        """The case follows the event's ladder: its id and level, and its episode when the event has one
        (an event without one, from a ladder older than the episodes, keeps the known episode)."""
        case.escalation_id, case.escalation_level = data.escalation_id, data.level
        changed = ["escalation_id", "escalation_level"]
        if data.episode is not None:
            case.escalation_episode = data.episode
            changed.append("escalation_episode")
        return changed

    async def on_escalation_level(session: AsyncSession, event: ReceivedEvent[EscalationEvent]) -> None:
        """The ladder entered a level: its first (EscalationRaised) or the next (EscalationAdvanced).

        An event whose episode is lower than the case's (``escalation_episode``, the episode of the
        ladder the case follows) belongs to an earlier episode's ladder and is ignored. Otherwise (a
        higher or equal episode, an event without one, or a case that knows none) the case follows the
        event's ladder and records its episode, unless it is a repeated or earlier step of the same
        ladder."""
        case = await repo.get_case(session, event.data.case_id, for_update=True)
        if case is None:
            raise PermanentEventError("unknown_case")
        if stale_ladder(case, event.data):
            return
        same_ladder = case.escalation_id == event.data.escalation_id and case.escalation_level in LEVEL_ORDER
        if same_ladder and LEVEL_ORDER.index(event.data.level) <= LEVEL_ORDER.index(case.escalation_level):
            return  # a stale or repeated step of the same ladder
        # Another escalation id of this episode or a later one is a new ladder (notify runs one at a time).
        bump_version(case, follow_ladder(case, event.data))

    async def on_escalation_resolved(session: AsyncSession, event: ReceivedEvent[EscalationResolved]) -> None:
        """notify stopped a ladder: an escalated case moves on (returned, placed, or back to persuading).

        A resolution whose episode is lower than the case's (``escalation_episode``) ends an earlier
        episode's ladder (delivered late or replayed from dead letters while the case is escalated on a
        newer one) and is ignored: the case keeps its ladder and its state. Otherwise (a higher or equal
        episode, none on the event, or none known on the case) the case takes the ladder's id, level and
        episode and, when escalated, moves."""
        case = await repo.get_case(session, event.data.case_id, for_update=True)
        if case is None:
            raise PermanentEventError("unknown_case")
        if stale_ladder(case, event.data):
            return
        follow_ladder(case, event.data)
        if case.state != "escalated":
            log.info("escalation resolved on a case no longer escalated", extra={"case_id": case.id})
            return
        to = RESOLUTION_STATE[event.data.resolution]
        request = TransitionRequest(to=to, note=f"escalation {event.data.resolution}")  # type: ignore[arg-type]
        # notify does not know the placement mode: the school records it on the case afterwards.
        await apply_transition(
            session=session, ctx=ctx, case=case, request=request, actor="notify", system=True
        )

    async def on_child_status_changed(
        session: AsyncSession, event: ReceivedEvent[ChildStatusChanged]
    ) -> None:
        d = event.data
        applied = await upsert_registry_status(
            session,
            child_id=d.child_id,
            status=d.status,
            effective_date=d.effective_date,
            sequence=event.envelope.sequence,
        )
        if not applied or d.status not in EXCLUDING_REGISTRY_STATUSES:
            return
        case = await repo.find_open_case(session, child_id=d.child_id, student_id=None, blind_index=None)
        if case is None:
            return
        request = TransitionRequest(to="closed", closure_reason="excluded", on=d.effective_date)
        await apply_transition(session=session, ctx=ctx, case=case, request=request, actor="registry")

    return {
        "dropout_suspected": on_dropout_suspected,
        "student_linked": on_student_linked,
        "escalation_raised": on_escalation_level,
        "escalation_advanced": on_escalation_level,
        "escalation_resolved": on_escalation_resolved,
        "child_status_changed": on_child_status_changed,
    }
