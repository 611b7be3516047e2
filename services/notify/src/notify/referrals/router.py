"""Referral endpoints: list, send by hand, receipt, outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from baoxue.workdays import today_in_china
from notify.referrals import service
from notify.referrals.models import Referral
from notify.referrals.schemas import ReferralCreate, ReferralOutcome, ReferralPublic

router = APIRouter(prefix="/referrals", tags=["referrals"])
Reader = Annotated[Principal, Depends(requires("referral:read"))]
Handler = Annotated[Principal, Depends(requires("referral:handle"))]


def _public(r: Referral) -> ReferralPublic:
    return ReferralPublic(
        id=r.id,
        kind=r.kind,
        subject_id=r.subject_id,
        case_id=r.case_id,
        child_id=r.child_id,
        from_org=r.from_org,
        to_org=r.to_org,
        required_action=r.required_action,
        details=r.details,
        status=r.status,
        received_at=r.received_at,
        outcome=r.outcome,
        outcome_note=r.outcome_note,
        closed_on=r.closed_on,
    )


@router.get("", summary="Referrals sent to the caller's organisation or from its jurisdiction")
async def list_referrals(
    session: SessionDep,
    principal: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[str | None, Query(pattern="^(sent|received|closed)$")] = None,
    kind: Annotated[str | None, Query(max_length=30)] = None,
) -> Page[ReferralPublic]:
    rows = await service.page(
        session, principal, status=status, kind=kind, after=decode_cursor(cursor, str), limit=limit
    )
    return page_of([_public(r) for r in rows], limit, lambda r: r.id)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Refer a case's employer, venue or family")
async def create(
    body: ReferralCreate,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("case:refer"))],
) -> list[ReferralPublic]:
    await service.ensure_case_visible(session, principal, body.case_id)
    await service.send(
        session=session,
        ctx=ctx,
        kind=body.kind,
        subject_id=body.case_id,
        from_org=principal.org,
        case_id=body.case_id,
        details=body.details,
    )
    rows = await service.page(session, principal, status=None, kind=body.kind, after=None, limit=50)
    return [_public(r) for r in rows if r.subject_id == body.case_id]


@router.post("/{referral_id}/receipt", summary="Confirm receipt (回执)")
async def receipt(referral_id: str, session: SessionDep, principal: Handler) -> ReferralPublic:
    return _public(await service.receive(session=session, principal=principal, referral_id=referral_id))


@router.post("/{referral_id}/outcome", summary="Report the outcome and close the referral")
async def outcome(
    referral_id: str, body: ReferralOutcome, session: SessionDep, principal: Handler
) -> ReferralPublic:
    return _public(
        await service.close(
            session=session,
            principal=principal,
            referral_id=referral_id,
            outcome=body.outcome,
            note=body.note,
            on=today_in_china(),
        )
    )
