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

    async def on_escalation_level(session: AsyncSession, event: ReceivedEvent[EscalationEvent]) -> None:
        """The ladder entered a level: its first (EscalationRaised) or the next (EscalationAdvanced)."""
        case = await repo.get_case(session, event.data.case_id, for_update=True)
        if case is None:
            raise PermanentEventError("unknown_case")
        same_ladder = case.escalation_id == event.data.escalation_id and case.escalation_level in LEVEL_ORDER
        if same_ladder and LEVEL_ORDER.index(event.data.level) <= LEVEL_ORDER.index(case.escalation_level):
            return  # a stale or repeated step of the same ladder
        # Another escalation id is a new ladder (notify runs one at a time: the previous was resolved).
        case.escalation_id, case.escalation_level = event.data.escalation_id, event.data.level
        bump_version(case, ["escalation_id", "escalation_level"])

    async def on_escalation_resolved(session: AsyncSession, event: ReceivedEvent[EscalationResolved]) -> None:
        case = await repo.get_case(session, event.data.case_id, for_update=True)
        if case is None:
            raise PermanentEventError("unknown_case")
        case.escalation_id, case.escalation_level = event.data.escalation_id, event.data.level
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
