"""The escalation ladder's rules: start, climb (by lapse or by hand), record actions, stop.

L1 school persuasion → L2 town order to correct (责令限期改正) → L3 judicial documents through the justice
bureau → L4 legal action. Each level has an acting organisation, a deadline in working days and the
document issued on entry; a level whose deadline lapses while the case is unresolved moves up by itself.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.contracts.notify import EscalationAdvanced, EscalationRaised, EscalationResolved
from baoxue.db import utcnow
from baoxue.errors import Conflict, Forbidden, NotFound
from baoxue.orgs.directory import OrgDirectory
from baoxue.service import ServiceContext
from notify.calendar.service import due_after
from notify.deadlines import repository as deadlines
from notify.delivery.inbox import Post, post_messages
from notify.documents import repository as documents_repo
from notify.documents.service import issue_document
from notify.escalation import ladder, repository
from notify.escalation.models import Escalation, EscalationStep
from notify.settings import NotifySettings

SYSTEM_ACTOR = "notify:ladder"


@dataclass(frozen=True)
class CaseRef:
    """What notify knows of a case from casework's events (no personal data)."""

    case_id: str
    child_id: str | None
    school_code: str | None
    hukou_town: str | None
    reason: str | None


def _settings(ctx: ServiceContext) -> NotifySettings:
    assert isinstance(ctx.settings, NotifySettings)
    return ctx.settings


async def start_episode(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    case: CaseRef,
    episode: int,
    on: dt.date,
    trigger: str,
    earlier_ended_as: str,
) -> Escalation | None:
    """A dropout episode of the case begins with the case event of sequence `episode` (its confirmation,
    or the relapse of a returned child before closure): the episode's ladder starts at L1
    (EscalationRaised).

    One ladder per episode: when one of the case's ladders, active or resolved, already serves this
    event or a later one (the same confirmation delivered again after its ladder was resolved, or a late
    one), or a later case event ended an episode of the case (a return, placement, closure or withdrawal
    that arrived first, finding no ladder to stop: the confirmation was dead-lettered and replayed after
    it), nothing starts and None is returned. A case has at most one active ladder: one of an earlier
    episode still active belongs to an episode that has ended although the event that ended it has not
    arrived (it will find the ladder gone, being earlier than this one); it is resolved as
    `earlier_ended_as`, what must have ended that episode (the closure before a reopening, the return
    before a relapse), and this episode's own ladder starts. A ladder from before the episodes were kept
    is taken as this episode's."""
    await repository.lock_case(session, case.case_id)
    if await _passed(session, case.case_id, episode):
        return None
    active = await repository.active_for_case(session, case.case_id)
    if active is not None:
        if active.episode_sequence is None:
            active.episode_sequence = episode
            return active
        await _stop(
            session=session,
            ctx=ctx,
            esc=active,
            resolution=earlier_ended_as,
            on=on,
            actor=SYSTEM_ACTOR,
            note=f"a later episode began (case event {episode}) before this one's end arrived",
        )
    return await _start(
        session=session, ctx=ctx, case=case, level="L1_school", on=on, trigger=trigger, episode=episode
    )


async def escalate(
    *, session: AsyncSession, ctx: ServiceContext, case: CaseRef, episode: int, on: dt.date
) -> Escalation | None:
    """The guardians refuse and the school asks the town to act (EscalationRequested, the case event of
    sequence `episode`): the active ladder is lifted from L1 to L2 and now serves the request; without
    one, a ladder starts at L2. A request that one of the case's ladders already served, one older than
    the event a ladder serves (delivered again, or late), or one older than the case's latest episode end
    (the return after it arrived first) lifts and starts nothing: None."""
    await repository.lock_case(session, case.case_id)
    if await _passed(session, case.case_id, episode):
        return None
    active = await repository.active_for_case(session, case.case_id)
    if active is None:
        return await _start(
            session=session,
            ctx=ctx,
            case=case,
            level="L2_town_order",
            on=on,
            trigger="requested",
            episode=episode,
        )
    active.episode_sequence = episode
    if active.level == "L1_school":
        await advance(session=session, ctx=ctx, esc=active, on=on, trigger="requested")
    return active


async def _passed(session: AsyncSession, case_id: str, episode: int) -> bool:
    """Whether the case's escalation is past the case event `episode`: a ladder of the case serves it or
    a later one, or a case event not earlier than it ended an episode (recorded by `resolve`, with or
    without a ladder to stop)."""
    latest = await repository.latest_episode(session, case_id)
    if latest is not None and latest >= episode:
        return True
    ended = await repository.latest_end(session, case_id)
    return ended is not None and ended >= episode


async def _start(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    case: CaseRef,
    level: str,
    on: dt.date,
    trigger: str,
    episode: int,
    actor: str = SYSTEM_ACTOR,
) -> Escalation:
    """A new ladder for the case at `level`, serving the case event `episode` (EscalationRaised)."""
    lv = ladder.level(level)
    esc = Escalation(
        id=str(uuid.uuid4()),
        case_id=case.case_id,
        child_id=case.child_id,
        school_code=case.school_code,
        hukou_town=case.hukou_town,
        reason=case.reason,
        level=lv.code,
        level_entered_on=on,
        level_deadline=on,
        episode_sequence=episode,
    )
    session.add(esc)
    await _enter(session=session, ctx=ctx, esc=esc, lv=lv, on=on, trigger=trigger, actor=actor)
    await ctx.outbox.add(
        session,
        EscalationRaised(
            escalation_id=esc.id,
            case_id=esc.case_id,
            level=lv.code,
            deadline=esc.level_deadline,
            episode=esc.episode_sequence,
        ),
        subject=esc.id,
        sequence=esc.version,
    )
    return esc


async def advance(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    esc: Escalation,
    on: dt.date,
    trigger: str,
    actor: str = SYSTEM_ACTOR,
    note: str | None = None,
) -> Escalation:
    """Move an active ladder one level up (EscalationAdvanced); the old level's deadline is closed.
    409 ``ladder_at_top`` at L4, 409 ``escalation_resolved`` for a stopped ladder."""
    if esc.state != "active":
        raise Conflict("The escalation is resolved.", code="escalation_resolved")
    target = ladder.next_level(esc.level)
    if target is None:
        raise Conflict("The case is already at the last level (legal action).", code="ladder_at_top")
    from_level = esc.level
    if trigger != "lapsed":
        await deadlines.close(
            session, kind=f"escalation_{from_level}", subject_id=f"{esc.id}:{from_level}", status="met", on=on
        )
    esc.version += 1
    await _enter(session=session, ctx=ctx, esc=esc, lv=target, on=on, trigger=trigger, actor=actor, note=note)
    await ctx.outbox.add(
        session,
        EscalationAdvanced(
            escalation_id=esc.id,
            case_id=esc.case_id,
            level=target.code,
            from_level=from_level,
            deadline=esc.level_deadline,
            episode=esc.episode_sequence,
        ),  # type: ignore[arg-type]
        subject=esc.id,
        sequence=esc.version,
    )
    return esc


async def resolve(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    case_id: str,
    resolution: str,
    on: dt.date,
    episode: int | None = None,
    actor: str = SYSTEM_ACTOR,
    note: str | None = None,
) -> Escalation | None:
    """Stop the active ladder of a case (EscalationResolved) and cancel its levels' open deadlines (not
    the case's others, such as the school's report). `episode` is the sequence of the case event that
    stops it (a return, placement, closure, withdrawal): it stops only a ladder of its own episode or an
    earlier one, never one serving a later case event (a return of the episode before a reopening,
    arriving late or replayed, leaves the new episode's ladder alone). Without it (by hand) the active
    ladder stops. Returns None when no ladder was stopped.

    A stopping case event is kept as the case's latest episode end whether or not it stops a ladder:
    arriving before any ladder (the confirmation dead-lettered, the request late), it still ends the
    episode, and the confirmation, relapse or request it followed starts nothing when it arrives."""
    await repository.lock_case(session, case_id)
    if episode is not None:
        await repository.record_end(session, case_id=case_id, sequence=episode, resolution=resolution, on=on)
    esc = await repository.active_for_case(session, case_id)
    if esc is None:
        return None
    if episode is not None and esc.episode_sequence is not None and episode <= esc.episode_sequence:
        return None
    await _stop(session=session, ctx=ctx, esc=esc, resolution=resolution, on=on, actor=actor, note=note)
    return esc


async def _stop(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    esc: Escalation,
    resolution: str,
    on: dt.date,
    actor: str,
    note: str | None,
) -> None:
    esc.state, esc.resolution, esc.resolved_on = "resolved", resolution, on
    esc.version += 1
    esc.updated_at = utcnow()
    await deadlines.cancel_for_escalation(session, escalation_id=esc.id, on=on)
    session.add(
        EscalationStep(
            escalation_id=esc.id,
            level=esc.level,
            kind="resolved",
            trigger=resolution,
            on=on,
            actor=actor,
            note=note,
        )
    )
    await session.flush()
    await ctx.outbox.add(
        session,
        EscalationResolved(
            escalation_id=esc.id,
            case_id=esc.case_id,
            level=esc.level,  # type: ignore[arg-type]
            resolution=resolution,
            deadline=None,
            episode=esc.episode_sequence,
        ),  # type: ignore[arg-type]
        subject=esc.id,
        sequence=esc.version,
    )


async def level_lapsed(
    *, session: AsyncSession, ctx: ServiceContext, escalation_id: str, level: str, today: dt.date
) -> Escalation | None:
    """A level's deadline lapsed: climb if the ladder is still active at that level and not at the top."""
    esc = await repository.get(session, escalation_id, lock=True)
    if esc is None or esc.state != "active" or esc.level != level or ladder.next_level(level) is None:
        return None
    return await advance(session=session, ctx=ctx, esc=esc, on=today, trigger="lapsed")


async def record_action(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    escalation_id: str,
    note: str,
    on: dt.date,
    document_id: str | None,
) -> EscalationStep:
    """The acting organisation (or the bureau) records what it did at the current level."""
    esc = await _for_actor(
        session=session, directory=ctx.directory, principal=principal, escalation_id=escalation_id
    )
    step = EscalationStep(
        escalation_id=esc.id,
        level=esc.level,
        kind="action",
        trigger="manual",
        on=on,
        actor_org=principal.org,
        actor=principal.subject,
        note=note,
        document_id=document_id,
    )
    session.add(step)
    await session.flush()
    return step


async def advance_by_hand(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    escalation_id: str,
    note: str,
    on: dt.date,
) -> Escalation:
    """The acting organisation moves the case up before the deadline (e.g. the parents refuse outright)."""
    esc = await _for_actor(
        session=session, directory=ctx.directory, principal=principal, escalation_id=escalation_id
    )
    return await advance(
        session=session, ctx=ctx, esc=esc, on=on, trigger="manual", actor=principal.subject, note=note
    )


async def withdraw(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    escalation_id: str,
    note: str,
    on: dt.date,
) -> Escalation:
    esc = await _for_actor(
        session=session, directory=ctx.directory, principal=principal, escalation_id=escalation_id
    )
    await _stop(
        session=session, ctx=ctx, esc=esc, resolution="withdrawn", on=on, actor=principal.subject, note=note
    )
    return esc


async def _for_actor(
    *, session: AsyncSession, directory: OrgDirectory, principal: Principal, escalation_id: str
) -> Escalation:
    """The ladder, for a caller who may act on it now: 404 outside the caller's sight, 409 once resolved,
    403 ``not_the_acting_organisation`` unless the caller is the bureau or the level's acting
    organisation itself (at L2 the town named by the case's hukou, not the school's town)."""
    esc = await repository.get(session, escalation_id, lock=True)
    if esc is None or not (
        principal.covers(esc.school_code)
        or principal.covers(esc.hukou_town)
        or principal.has_role("justice", "bureau")
    ):
        raise NotFound("No such escalation.")
    if esc.state != "active":
        raise Conflict("The escalation is resolved.", code="escalation_resolved")
    lv = ladder.level(esc.level)
    acting_org = ladder.actor_org(lv, directory, school_code=esc.school_code, hukou_town=esc.hukou_town)
    if not (principal.has_role("bureau") or principal.org == acting_org):
        raise Forbidden(f"At {esc.level} {acting_org} acts.", code="not_the_acting_organisation")
    return esc


async def _enter(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    esc: Escalation,
    lv: ladder.Level,
    on: dt.date,
    trigger: str,
    actor: str,
    note: str | None = None,
) -> None:
    settings = _settings(ctx)
    deadline = await due_after(session=session, ctx=ctx, start=on, workdays=ladder.workdays(lv, settings))
    acting_org = ladder.actor_org(lv, ctx.directory, school_code=esc.school_code, hukou_town=esc.hukou_town)
    esc.level, esc.level_entered_on, esc.level_deadline = lv.code, on, deadline.due
    esc.deadline_warnings = ",".join(deadline.warnings)
    esc.updated_at = utcnow()
    await session.flush()
    await deadlines.insert_missing(
        session,
        [
            {
                "id": str(uuid.uuid4()),
                "kind": f"escalation_{lv.code}",
                "org": acting_org,
                "subject_id": f"{esc.id}:{lv.code}",
                "case_id": esc.case_id,
                "due_date": deadline.due,
                "warnings": ",".join(deadline.warnings),
                "status": "open",
                "created_at": utcnow(),
            }
        ],
    )
    document_id = await _issue_level_document(
        session=session, ctx=ctx, esc=esc, lv=lv, acting_org=acting_org, on=on
    )
    session.add(
        EscalationStep(
            escalation_id=esc.id,
            level=lv.code,
            kind="entered",
            trigger=trigger,
            on=on,
            deadline=deadline.due,
            actor_org=acting_org,
            actor=actor,
            note=note,
            document_id=document_id,
        )
    )
    await post_messages(
        session,
        [
            Post(
                acting_org,
                "escalation",
                f"督办：案件进入{lv.label_zh}，期限 {deadline.due.isoformat()}",
                body=f"case_id={esc.case_id} level={lv.code}",
                ref_type="escalation",
                ref_id=esc.id,
                action_required=True,
            )
        ],
    )
    await session.flush()


async def _issue_level_document(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    esc: Escalation,
    lv: ladder.Level,
    acting_org: str,
    on: dt.date,
) -> str | None:
    if lv.document_kind is None:
        return None
    fields = {"case_ref": esc.case_id, "deadline": esc.level_deadline.isoformat()}
    issuing_org, recipient_org = acting_org, None
    if lv.document_kind == "judicial_referral":
        order = next(
            (
                d
                for d in reversed(await documents_repo.for_escalation(session, esc.id))
                if d.kind == "correction_order"
            ),
            None,
        )
        if order is None:
            return None
        issuing_org, recipient_org = order.issuing_org, acting_org
        fields |= {
            "order_number": order.number,
            "order_issued_on": order.issued_on.isoformat(),
            "order_deadline": json.loads(order.fields)["deadline"],
        }
    doc = await issue_document(
        session=session,
        ctx=ctx,
        kind=lv.document_kind,
        issuing_org=issuing_org,
        issued_by=SYSTEM_ACTOR,
        fields=fields,
        recipient_org=recipient_org,
        case_id=esc.case_id,
        escalation_id=esc.id,
        issued_on=on,
    )
    return doc.id
