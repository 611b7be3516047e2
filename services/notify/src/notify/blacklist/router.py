"""Blacklist endpoints: list providers with evidence, delist, check a case's whereabouts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from baoxue.auth.principal import Principal
from baoxue.deps import Ctx, SessionDep, requires
from baoxue.pagination import Cursor, Limit, Page, decode_cursor, page_of
from baoxue.workdays import today_in_china
from notify.blacklist import service
from notify.blacklist.models import Provider, ProviderEvidence
from notify.blacklist.schemas import (
    Delisting,
    EvidenceIn,
    ProviderCreate,
    ProviderMatch,
    ProviderPublic,
    WhereaboutsCheck,
)

router = APIRouter(prefix="/providers", tags=["blacklist"])
Reader = Annotated[Principal, Depends(requires("blacklist:read"))]
Writer = Annotated[Principal, Depends(requires("blacklist:write"))]


def _public(p: Provider, evidence: list[ProviderEvidence] | None = None) -> ProviderPublic:
    return ProviderPublic(
        id=p.id,
        name=p.name,
        kind=p.kind,
        town=p.town,
        location=p.location,
        status=p.status,
        listed_on=p.listed_on,
        listed_org=p.listed_org,
        delisted_on=p.delisted_on,
        delisting_reason=p.delisting_reason,
        evidence=[
            EvidenceIn(kind=e.kind, description=e.description, reference=e.reference)  # type: ignore[arg-type]
            for e in evidence or []
        ],
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Blacklist an illegal schooling provider")
async def create(body: ProviderCreate, session: SessionDep, principal: Writer) -> ProviderPublic:
    provider = await service.list_provider(
        session=session,
        principal=principal,
        name=body.name,
        kind=body.kind,
        town=body.town,
        location=body.location,
        evidence=[(e.kind, e.description, e.reference) for e in body.evidence],
        on=today_in_china(),
    )
    return _public(provider, await service.evidence_of(session, provider.id))


@router.get("", summary="The blacklist (public within the government)")
async def list_providers(
    session: SessionDep,
    _: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[str | None, Query(pattern="^(listed|delisted)$")] = "listed",
    kind: Annotated[str | None, Query(max_length=20)] = None,
    town: Annotated[str | None, Query(max_length=12)] = None,
) -> Page[ProviderPublic]:
    rows = await service.page(
        session, status=status, kind=kind, town=town, after=decode_cursor(cursor, str), limit=limit
    )
    return page_of([_public(r) for r in rows], limit, lambda p: p.id)


@router.get("/{provider_id}", summary="One provider with its evidence")
async def get_provider(provider_id: str, session: SessionDep, _: Reader) -> ProviderPublic:
    provider = await service.get(session=session, provider_id=provider_id)
    return _public(provider, await service.evidence_of(session, provider.id))


@router.post("/{provider_id}/evidence", status_code=status.HTTP_201_CREATED, summary="Add evidence")
async def add_evidence(
    provider_id: str, body: EvidenceIn, session: SessionDep, principal: Writer
) -> ProviderPublic:
    await service.add_evidence(
        session=session,
        principal=principal,
        provider_id=provider_id,
        kind=body.kind,
        description=body.description,
        reference=body.reference,
        on=today_in_china(),
    )
    provider = await service.get(session=session, provider_id=provider_id)
    return _public(provider, await service.evidence_of(session, provider.id))


@router.post("/{provider_id}/delisting", summary="Take a provider off the list (with the reason)")
async def delist(provider_id: str, body: Delisting, session: SessionDep, principal: Writer) -> ProviderPublic:
    provider = await service.delist(
        session=session, principal=principal, provider_id=provider_id, reason=body.reason, on=today_in_china()
    )
    return _public(provider, await service.evidence_of(session, provider.id))


@router.post("/matches", summary="Check a case's whereabouts against the blacklist (alerts on a hit)")
async def match(
    body: WhereaboutsCheck,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(requires("case:refer"))],
) -> list[ProviderMatch]:
    hits = await service.match_whereabouts(
        session=session,
        ctx=ctx,
        principal=principal,
        case_id=body.case_id,
        text=body.whereabouts,
        town=body.town,
    )
    return [ProviderMatch(id=p.id, name=p.name, kind=p.kind) for p in hits]
