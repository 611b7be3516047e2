"""State changes of a case: what each target state needs, the proofs of closure, and the events."""

import datetime as dt
import logging

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.concurrency import ensure_current
from baoxue.contracts.casework import (
    CaseClosed,
    CaseConfirmed,
    CaseEvent,
    CasePlaced,
    CaseRelapsed,
    CaseReturned,
    EscalationRequested,
    EscalationWithdrawn,
)
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.service import ServiceContext
from baoxue.workdays import default_calendar
from casework.cases import repository as repo
from casework.cases.events import case_event
from casework.cases.models import Case, CaseEvidence
from casework.cases.schemas import TransitionRequest
from casework.cases.service import record_transition, settings_of
from casework.cases.states import ensure_closure_reason, ensure_transition
from casework.semesters import today

log = logging.getLogger(__name__)

EXCLUDING_REGISTRY_STATUSES = ("deceased", "moved_out")


def _required(value: object, field: str, to_state: str) -> None:
    if value in (None, "", []):
        raise Problem(
            f"Moving a case to '{to_state}' needs '{field}'.",
            status=422,
            code="transition_field_required",
            errors=[{"field": field, "code": "missing"}],
        )


async def transition_case(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    case_id: str,
    request: TransitionRequest,
    expected_version: int | None = None,
) -> Case:
    """Move a visible case to ``request.to`` if the state machine allows it (409 naming from/to
    otherwise) and the target's conditions hold; publishes the target's event in the same transaction.
    With ``expected_version`` (the client's ``If-Match``) a case that changed since is a 412 naming the
    fields changed and the current state, checked before anything else about the move."""
    case = await repo.get_case(session, case_id, principal, for_update=True)
    if case is None:
        raise NotFound("No such case.")
    ensure_current(case, expected_version, current_state=case.state)
    return await apply_transition(
        session=session, ctx=ctx, case=case, request=request, actor=principal.subject, stated_by_caller=True
    )


async def ensure_transition_date(session: AsyncSession, case: Case, on: dt.date) -> None:
    """A date a caller states for a move lies between the case's latest transition (its opening or
    reopening, or the move before this one) and the server's day, both included: 422
    ``transition_date_in_future`` (naming ``latest``) or ``transition_date_too_early`` (naming
    ``earliest``). Back-dating inside that window stays possible (a return recorded a few days late);
    a history whose moves go back in time is not (a return before the dropout or before the relapse,
    a confirmation or closure before the opening). A latest transition dated after today (a signal
    detected on a later day) bounds nothing beyond today."""
    now = today()
    if on > now:
        raise Problem(
            "A move cannot be dated after today.",
            status=422,
            code="transition_date_in_future",
            latest=now.isoformat(),
            errors=[{"field": "on", "code": "transition_date_in_future"}],
        )
    earliest = min(await repo.last_transition_on(session, case.id) or case.opened_on, now)
    if on < earliest:
        raise Problem(
            "A move cannot be dated before the case's latest transition.",
            status=422,
            code="transition_date_too_early",
            earliest=earliest.isoformat(),
            errors=[{"field": "on", "code": "transition_date_too_early"}],
        )


async def apply_transition(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    case: Case,
    request: TransitionRequest,
    actor: str,
    system: bool = False,
    stated_by_caller: bool = False,
) -> Case:
    """The transition itself, for a case already loaded (and locked); used by routes and event handlers.
    ``system`` marks another service's outcome (notify's ladder), which may lack a placement mode.
    ``stated_by_caller``: a date in the request is the caller's and is bounded
    (:func:`ensure_transition_date`); an event's date (the registry's effective date) is taken as is."""
    ensure_transition(case.state, request.to)
    if stated_by_caller and request.on is not None:
        await ensure_transition_date(session, case, request.on)
    on = request.on or today()
    to = request.to
    if to == "confirmed":
        reason = request.reason or case.reason
        responsible = request.responsible_person or case.responsible_person
        _required(reason, "reason", to)
        _required(responsible, "responsible_person", to)
        changed = [
            name
            for name, value in (("reason", reason), ("responsible_person", responsible))
            if getattr(case, name) != value
        ]
        case.reason, case.responsible_person = reason, responsible
        case.confirmed_on = on
        case.report_due = (
            default_calendar().add_workdays_lenient(on, settings_of(ctx).report_due_workdays).due
        )
        case.overdue_published = False
        await record_transition(
            session,
            case,
            to,
            on=on,
            by=actor,
            note=request.note,
            changed=[*changed, "confirmed_on", "report_due"],
        )
        event: CaseEvent | None = case_event(CaseConfirmed, case, report_due=case.report_due)
    elif to == "returned":
        case.returned_on = on
        await record_transition(
            session, case, to, on=on, by=actor, note=request.note, changed=["returned_on"]
        )
        event = case_event(CaseReturned, case, returned_on=on)
    elif to == "placed":
        if not system:
            _required(request.placement_mode, "placement_mode", to)
        case.placement_mode = request.placement_mode or case.placement_mode
        await record_transition(
            session, case, to, on=on, by=actor, note=request.note, changed=["placement_mode"]
        )
        event = case_event(CasePlaced, case, placement_mode=case.placement_mode)
    elif to == "escalated":
        _required(request.evidence, "evidence", to)
        await session.execute(
            insert(CaseEvidence),
            [
                {
                    "case_id": case.id,
                    "kind": e.kind,
                    "description": e.description,
                    "file_hash": e.file_hash,
                    "recorded_on": on,
                    "created_by": actor,
                }
                for e in request.evidence
            ],
        )
        await record_transition(session, case, to, on=on, by=actor, note=request.note)
        event = case_event(
            EscalationRequested,
            case,
            evidence_count=len(request.evidence),
            guardian_refusal=case.reason == "guardian_refusal",
        )
    elif to == "closed":
        _required(request.closure_reason, "closure_reason", to)
        assert request.closure_reason is not None
        await _ensure_closable(session, ctx, case, request.closure_reason)
        case.closed_on, case.closure_reason = on, request.closure_reason
        case.open_key = None
        watch = settings_of(ctx).relapse_watch_days
        case.watch_until = on + dt.timedelta(days=watch) if request.closure_reason != "excluded" else None
        await record_transition(
            session,
            case,
            to,
            on=on,
            by=actor,
            note=request.note,
            changed=["closed_on", "closure_reason", "watch_until"],
        )
        event = case_event(CaseClosed, case, closure_reason=request.closure_reason)
    else:  # persuading
        from_state = case.state
        await record_transition(session, case, to, on=on, by=actor, note=request.note)
        if from_state == "returned":
            # The child stopped attending again before closure: the return no longer counts, a new
            # episode of persuasion begins (notify: not returned on the scorecard, a new ladder).
            event = case_event(CaseRelapsed, case, relapsed_on=on)
        elif from_state == "escalated" and not system:
            # The school takes its escalation back: notify's ladder stops (resolved as withdrawn). When
            # notify resolved the ladder itself (system), there is nothing left to stop.
            event = case_event(EscalationWithdrawn, case)
        else:
            event = None
    await session.flush()
    if event is not None:
        await ctx.outbox.add(session, event, subject=case.id, sequence=case.version)
    log.info("case moved", extra={"case_id": case.id, "state": case.state})
    return case


async def _ensure_closable(session: AsyncSession, ctx: ServiceContext, case: Case, reason: str) -> None:
    """The proof a closure (销号) needs: 409 with a specific code when it is missing."""
    ensure_closure_reason(case.state, reason)
    ids = {"child_id": case.child_id, "student_id": case.student_id, "blind_index": case.id_blind_index}
    if reason in ("returned", "unfounded") and not await repo.has_active_student_record(session, **ids):
        raise Conflict(
            "Enrollment shows no active student record for the child.", code="no_active_student_record"
        )
    if reason == "placed" and case.placement_mode is None:
        # Placed by the escalation ladder (notify does not know the mode): the school records it first.
        raise Conflict(
            "The placement is not recorded: set the case's placement_mode before closing it as placed.",
            code="placement_not_recorded",
        )
    if reason in ("returned", "unfounded"):
        # An unfounded suspicion needs attendance too: enrollment's main signal (four weeks of absence)
        # leaves the record enrolled, so the active record above proves nothing about attending.
        required = settings_of(ctx).attendance_days_for_closure
        attended = await repo.attendance_days(session, case.id, await repo.attendance_since(session, case))
        if attended < required:
            raise Conflict(
                "The school has not confirmed enough days of attendance.",
                code="attendance_not_confirmed",
                days_confirmed=attended,
                days_required=required,
            )
    if (
        reason == "excluded"
        and await repo.registry_status(session, case.child_id) not in EXCLUDING_REGISTRY_STATUSES
    ):
        raise Conflict("The registry does not show the child as deceased or moved out.", code="not_excluded")
