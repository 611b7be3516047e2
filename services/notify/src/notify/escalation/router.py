"""Escalation endpoints: list and read ladders; the town's and the justice bureau's manual actions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from baoxue.auth.jurisdiction import ensure_within
from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.errors import NotFound
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from notify.escalation import ladder, repository, service
from notify.escalation.models import Escalation, EscalationStep
from notify.escalation.schemas import (
    EscalationAction,
    EscalationDecision,
    EscalationPublic,
    EscalationStepPublic,
)

router = APIRouter(prefix="/escalations", tags=["escalations"])
Reader = Annotated[Principal, Depends(requires("escalation:read"))]
Actor = Annotated[Principal, Depends(requires("escalation:act"))]


def _public(
    ctx: ServiceContext, esc: Escalation, steps: list[EscalationStep] | None = None
) -> EscalationPublic:
    lv = ladder.level(esc.level)
    return EscalationPublic(
        id=esc.id,
        case_id=esc.case_id,
        child_id=esc.child_id,
        school_code=esc.school_code,
        hukou_town=esc.hukou_town,
        level=esc.level,
        level_label_zh=lv.label_zh,
        acting_org=ladder.actor_org(
            lv, ctx.directory, school_code=esc.school_code, hukou_town=esc.hukou_town
        ),
        state=esc.state,
        resolution=esc.resolution,
        level_entered_on=esc.level_entered_on,
        level_deadline=esc.level_deadline,
        warnings=[w for w in esc.deadline_warnings.split(",") if w],
        version=esc.version,
        steps=[
            EscalationStepPublic(
                level=s.level,
                kind=s.kind,
                trigger=s.trigger,
                on=s.on,
                deadline=s.deadline,
                actor_org=s.actor_org,
                note=s.note,
                document_id=s.document_id,
            )
            for s in steps or []
        ],
    )


async def _visible(session: SessionDep, principal: Principal, escalation_id: str) -> Escalation:
    esc = await repository.get(session, escalation_id)
    if esc is None:
        raise NotFound("No such escalation.")
    if not principal.has_role("justice"):
        ensure_within(principal, esc.school_code, esc.hukou_town, resource="escalation")
    return esc


@router.get("", summary="Escalation ladders in the caller's jurisdiction")
async def list_escalations(
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    state: Annotated[str | None, Query(pattern="^(active|resolved)$")] = None,
    level: Annotated[str | None, Query(max_length=20)] = None,
    case_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[EscalationPublic]:
    rows = await repository.page(
        session,
        principal,
        after=decode_cursor(cursor, str),
        limit=limit,
        state=state,
        level=level,
        case_id=case_id,
    )
    return page_of([_public(ctx, r) for r in rows], limit, lambda e: e.id)


@router.get("/{escalation_id}", summary="One ladder with its history")
async def get_escalation(
    escalation_id: str, session: SessionDep, ctx: Ctx, principal: Reader
) -> EscalationPublic:
    esc = await _visible(session, principal, escalation_id)
    return _public(ctx, esc, await repository.steps(session, esc.id))


@router.post(
    "/{escalation_id}/actions",
    status_code=status.HTTP_201_CREATED,
    summary="Record what the acting organisation did at the current level",
)
async def record_action(
    escalation_id: str, body: EscalationAction, session: SessionDep, ctx: Ctx, principal: Actor
) -> EscalationPublic:
    await service.record_action(
        session=session,
        ctx=ctx,
        principal=principal,
        escalation_id=escalation_id,
        note=body.note,
        on=body.on or today_in_china(),
        document_id=body.document_id,
    )
    esc = await _visible(session, principal, escalation_id)
    return _public(ctx, esc, await repository.steps(session, esc.id))


@router.post("/{escalation_id}/advance", summary="Move the case up one level now (the acting organisation)")
async def advance(
    escalation_id: str, body: EscalationDecision, session: SessionDep, ctx: Ctx, principal: Actor
) -> EscalationPublic:
    esc = await service.advance_by_hand(
        session=session,
        ctx=ctx,
        principal=principal,
        escalation_id=escalation_id,
        note=body.note,
        on=today_in_china(),
    )
    return _public(ctx, esc, await repository.steps(session, esc.id))


@router.post("/{escalation_id}/withdrawal", summary="Stop the ladder (e.g. the guardians complied)")
async def withdraw(
    escalation_id: str, body: EscalationDecision, session: SessionDep, ctx: Ctx, principal: Actor
) -> EscalationPublic:
    esc = await service.withdraw(
        session=session,
        ctx=ctx,
        principal=principal,
        escalation_id=escalation_id,
        note=body.note,
        on=today_in_china(),
    )
    return _public(ctx, esc, await repository.steps(session, esc.id))
