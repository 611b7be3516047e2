"""Event handlers that open and close deadlines (and run the ladder) from other services' events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts import casework as cw
from baoxue.contracts import enrollment as en
from baoxue.contracts import registry as rg
from baoxue.events.consumer import ReceivedEvent
from baoxue.service import ServiceContext
from baoxue.workdays import CHINA
from notify.deadlines.service import (
    meet_case_report,
    meet_deadline,
    open_case_report,
    task_resolved,
    task_superseded,
    task_unaccounted,
)
from notify.escalation import service as escalation
from notify.escalation.service import CaseRef
from notify.settings import NotifySettings

Handler = Callable[[AsyncSession, ReceivedEvent[Any]], Awaitable[None]]


def event_date(event: ReceivedEvent[Any]) -> dt.date:
    """The legal date (Asia/Shanghai) on which the event happened."""
    return event.envelope.time.astimezone(CHINA).date()


def _case(data: cw.CaseEvent) -> CaseRef:
    return CaseRef(
        case_id=data.case_id,
        child_id=data.child_id,
        school_code=data.school_code,
        hukou_town=data.hukou_town,
        reason=data.reason,
    )


def make_handlers(ctx: ServiceContext) -> dict[str, dict[type, Handler]]:
    settings = ctx.settings
    assert isinstance(settings, NotifySettings)

    # A verification task's events carry its version as their sequence: older ones are dropped (stale).

    async def on_child_unaccounted(session: AsyncSession, event: ReceivedEvent[en.ChildUnaccounted]) -> None:
        """Opened, reopened or moved: the named district owes the task (another's deadline cancelled)."""
        d = event.data
        await task_unaccounted(
            session=session,
            task_id=d.task_id,
            org=d.hukou_school_district,
            due=d.due_date,
            sequence=event.envelope.sequence,
            on=event_date(event),
        )

    async def on_task_superseded(
        session: AsyncSession, event: ReceivedEvent[en.VerificationTaskSuperseded]
    ) -> None:
        d = event.data
        await task_superseded(
            session=session,
            task_id=d.task_id,
            org=d.hukou_school_district,
            sequence=event.envelope.sequence,
            on=event_date(event),
        )

    async def on_task_resolved(
        session: AsyncSession, event: ReceivedEvent[en.VerificationTaskResolved]
    ) -> None:
        """Met on the day the resolution was recorded (the event's day, China's), on time as enrollment
        judged it on the server's day: never on the day the client states (``resolved_on``, which may be
        earlier for work done offline)."""
        await task_resolved(
            session=session,
            task_id=event.data.task_id,
            org=event.data.hukou_school_district,
            sequence=event.envelope.sequence,
            on=event_date(event),
            on_time=event.data.on_time,
            due=event.data.due_date,
        )

    async def on_case_confirmed(session: AsyncSession, event: ReceivedEvent[cw.CaseConfirmed]) -> None:
        d = event.data
        if d.school_code:
            await open_case_report(
                session=session,
                case_id=d.case_id,
                school_code=d.school_code,
                confirmed_on=event_date(event),
                due=d.report_due,
            )
        if settings.ladder_starts_at_confirmation:
            # A confirmation after an earlier episode's ladder means that episode was closed (reopened).
            await escalation.start_episode(
                session=session,
                ctx=ctx,
                case=_case(d),
                episode=event.envelope.sequence,
                on=event_date(event),
                trigger="confirmed",
                earlier_ended_as="closed",
            )

    async def on_case_relapsed(session: AsyncSession, event: ReceivedEvent[cw.CaseRelapsed]) -> None:
        """A returned child stopped attending again before closure: a new episode of persuasion, whose
        ladder starts at L1 like a confirmation's (the episode before it ended with the return)."""
        if settings.ladder_starts_at_confirmation:
            await escalation.start_episode(
                session=session,
                ctx=ctx,
                case=_case(event.data),
                episode=event.envelope.sequence,
                on=event_date(event),
                trigger="relapsed",
                earlier_ended_as="returned",
            )

    async def on_case_reported(session: AsyncSession, event: ReceivedEvent[cw.CaseReported]) -> None:
        await meet_case_report(session=session, case_id=event.data.case_id, on=event.data.reported_on)

    async def on_escalation_requested(
        session: AsyncSession, event: ReceivedEvent[cw.EscalationRequested]
    ) -> None:
        await escalation.escalate(
            session=session,
            ctx=ctx,
            case=_case(event.data),
            episode=event.envelope.sequence,
            on=event_date(event),
        )

    def stopper(resolution: str) -> Handler:
        async def on_stop(session: AsyncSession, event: ReceivedEvent[cw.CaseEvent]) -> None:
            await escalation.resolve(
                session=session,
                ctx=ctx,
                case_id=event.data.case_id,
                resolution=resolution,
                on=event_date(event),
                episode=event.envelope.sequence,
            )

        return on_stop

    async def on_census(session: AsyncSession, event: ReceivedEvent[cw.CensusCompleted]) -> None:
        d = event.data
        await meet_deadline(
            session=session, kind="census", subject_id=d.semester, org=d.school_code, on=d.completed_on
        )

    async def on_feed(session: AsyncSession, event: ReceivedEvent[rg.FeedCompleted]) -> None:
        d = event.data
        org = d.department
        if ctx.directory.get(org) is None:
            try:
                org = ctx.directory.by_role(d.department).code  # type: ignore[arg-type]
            except (KeyError, LookupError):
                return
        await meet_deadline(session=session, kind="feed", subject_id=d.period, org=org, on=event_date(event))

    return {
        "enrollment": {
            en.ChildUnaccounted: on_child_unaccounted,
            en.VerificationTaskSuperseded: on_task_superseded,
            en.VerificationTaskResolved: on_task_resolved,
        },
        "casework": {
            cw.CaseConfirmed: on_case_confirmed,
            cw.CaseReported: on_case_reported,
            cw.EscalationRequested: on_escalation_requested,
            cw.CaseReturned: stopper("returned"),
            cw.CaseRelapsed: on_case_relapsed,
            cw.CasePlaced: stopper("placed"),
            cw.CaseClosed: stopper("closed"),
            # The school took the case back to persuasion: the ladder stops as withdrawn.
            cw.EscalationWithdrawn: stopper("withdrawn"),
            cw.CensusCompleted: on_census,
        },
        "registry": {rg.FeedCompleted: on_feed},
    }
