"""Listing and delisting illegal schooling providers, evidence, and matching cases against the list."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.jurisdiction import ensure_within
from baoxue.auth.principal import Principal
from baoxue.db import conflict_insert, utcnow
from baoxue.errors import Conflict, Forbidden, NotFound
from baoxue.service import ServiceContext
from notify.blacklist.models import Provider, ProviderAlert, ProviderEvidence
from notify.bulletins import repository as facts
from notify.delivery.inbox import Post, post_messages

ALERTS = ProviderAlert.__table__  # type: ignore[attr-defined]
_NOISE = re.compile(r"[\s·・()（）\[\]【】\"'“”‘’,，.。、\-—_]+")


def match_key(text: str) -> str:
    """A name normalised for matching: full-width folded (NFKC), lower case, spaces and punctuation gone."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", text)).lower()


async def list_provider(
    *,
    session: AsyncSession,
    principal: Principal,
    name: str,
    kind: str,
    town: str | None,
    location: str | None,
    evidence: list[tuple[str, str, str | None]],
    on: dt.date,
) -> Provider:
    """Blacklist a provider with its first evidence (at least one item). A town lists in its own area;
    409 ``provider_listed`` when the same name is already listed."""
    if town is not None:
        ensure_within(principal, town, resource="town")
    key = match_key(name)
    existing = (
        (
            await session.execute(
                select(Provider).where(col(Provider.match_key) == key, col(Provider.status) == "listed")
            )
        )
        .scalars()
        .first()
    )
    if existing is not None:
        raise Conflict(
            "A provider of this name is already listed.", code="provider_listed", provider_id=existing.id
        )
    provider = Provider(
        id=str(uuid.uuid4()),
        name=name.strip(),
        match_key=key,
        kind=kind,
        town=town,
        location=location,
        listed_on=on,
        listed_by=principal.subject,
        listed_org=principal.org,
    )
    session.add(provider)
    for ev_kind, description, reference in evidence:
        session.add(
            ProviderEvidence(
                id=str(uuid.uuid4()),
                provider_id=provider.id,
                kind=ev_kind,
                description=description,
                reference=reference,
                recorded_on=on,
                recorded_by=principal.subject,
                recorded_org=principal.org,
            )
        )
    await session.flush()
    return provider


async def add_evidence(
    *,
    session: AsyncSession,
    principal: Principal,
    provider_id: str,
    kind: str,
    description: str,
    reference: str | None,
    on: dt.date,
) -> ProviderEvidence:
    provider = await _for_lister(session, principal, provider_id)
    evidence = ProviderEvidence(
        id=str(uuid.uuid4()),
        provider_id=provider.id,
        kind=kind,
        description=description,
        reference=reference,
        recorded_on=on,
        recorded_by=principal.subject,
        recorded_org=principal.org,
    )
    session.add(evidence)
    await session.flush()
    return evidence


async def delist(
    *, session: AsyncSession, principal: Principal, provider_id: str, reason: str, on: dt.date
) -> Provider:
    provider = await _for_lister(session, principal, provider_id)
    if provider.status != "listed":
        raise Conflict("The provider is not listed.", code="provider_not_listed")
    provider.status, provider.delisted_on, provider.delisting_reason = "delisted", on, reason
    provider.version += 1
    await session.flush()
    return provider


async def _for_lister(session: AsyncSession, principal: Principal, provider_id: str) -> Provider:
    """A provider whose listing the caller may change (evidence, delisting): the organisation that listed
    it or the bureau; the list is readable by everyone, so another organisation gets 403."""
    provider = await get(session=session, provider_id=provider_id)
    if not (principal.has_role("bureau") or principal.org == provider.listed_org):
        raise Forbidden(
            "Only the organisation that listed the provider, or the bureau, may change its listing.",
            code="not_the_listing_organisation",
        )
    return provider


async def get(*, session: AsyncSession, provider_id: str) -> Provider:
    provider = await session.get(Provider, provider_id)
    if provider is None:
        raise NotFound("No such provider.")
    return provider


async def evidence_of(session: AsyncSession, provider_id: str) -> list[ProviderEvidence]:
    statement = select(ProviderEvidence).where(col(ProviderEvidence.provider_id) == provider_id)
    return list((await session.execute(statement.order_by(col(ProviderEvidence.recorded_on)))).scalars())


async def page(
    session: AsyncSession,
    *,
    status: str | None,
    kind: str | None,
    town: str | None,
    after: str | None,
    limit: int,
) -> list[Provider]:
    statement = select(Provider)
    if status:
        statement = statement.where(col(Provider.status) == status)
    if kind:
        statement = statement.where(col(Provider.kind) == kind)
    if town:
        statement = statement.where(col(Provider.town) == town)
    if after:
        statement = statement.where(col(Provider.id) > after)
    return list((await session.execute(statement.order_by(col(Provider.id)).limit(limit + 1))).scalars())


async def _alert(
    session: AsyncSession,
    ctx: ServiceContext,
    providers: list[Provider],
    case_id: str,
    matched_on: str,
    town: str | None,
) -> list[Provider]:
    """Record one alert per (provider, case) and tell the bureau and the town; returns the new ones."""
    new: list[Provider] = []
    for provider in providers:
        result = await session.execute(
            conflict_insert(session, ALERTS)
            .values(
                id=str(uuid.uuid4()),
                provider_id=provider.id,
                case_id=case_id,
                matched_on=matched_on,
                created_at=utcnow(),
                town=town or provider.town,
            )
            .on_conflict_do_nothing()
        )
        if result.rowcount:  # type: ignore[attr-defined]
            new.append(provider)
    bureau = ctx.directory.by_role("bureau").code
    posts = []
    for provider in new:
        for org in {bureau, town or provider.town or bureau}:
            posts.append(
                Post(
                    org,
                    "alert",
                    f"预警：案件涉及黑名单机构「{provider.name}」",
                    body=f"case_id={case_id} provider_id={provider.id} matched_on={matched_on}",
                    ref_type="provider",
                    ref_id=provider.id,
                    action_required=True,
                )
            )
    await post_messages(session, posts)
    return new


async def match_whereabouts(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    case_id: str,
    text: str,
    town: str | None,
) -> list[Provider]:
    """Check a case's whereabouts text (never stored, never logged) against the listed providers'
    names; every hit becomes an alert. Returns the providers named in the text.

    The case must be one notify knows within the caller's jurisdiction (404 otherwise), and the town the
    alert goes to the caller's own or one of the case's (its hukou town, its school's town): 403
    ``outside_jurisdiction`` for another."""
    fact = await facts.case_fact(session, case_id)
    if fact is None:
        raise NotFound("No such case.")
    ensure_within(principal, fact.school_code, fact.hukou_town, resource="case")
    case_towns = {fact.hukou_town, ctx.directory.town_of(fact.school_code) if fact.school_code else None}
    if town is not None and not (principal.covers(town) or town in case_towns):
        raise Forbidden(
            "The town is neither in your jurisdiction nor the case's.", code="outside_jurisdiction"
        )
    key = match_key(text)
    listed = (await session.execute(select(Provider).where(col(Provider.status) == "listed"))).scalars().all()
    hits = [p for p in listed if p.match_key and p.match_key in key]
    await _alert(session, ctx, hits, case_id, "whereabouts", town)
    return hits


async def on_illegal_schooling_case(
    *, session: AsyncSession, ctx: ServiceContext, case_id: str, town: str | None
) -> list[Provider]:
    """A case's reason is illegal_schooling: the listed providers of the child's town are flagged to the
    town and the bureau for investigation."""
    if town is None:
        return []
    listed = (
        (
            await session.execute(
                select(Provider).where(col(Provider.status) == "listed", col(Provider.town) == town)
            )
        )
        .scalars()
        .all()
    )
    return await _alert(session, ctx, list(listed), case_id, "reason", town)
