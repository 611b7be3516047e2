"""Queries of child records; jurisdiction filters live here."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import within_jurisdiction
from baoxue.auth.principal import Principal
from registry.children.models import Child, ChildAttribute, ChildFlag, ChildHistory

_c = Child.__table__  # type: ignore[attr-defined]
_attrs = ChildAttribute.__table__  # type: ignore[attr-defined]
_flags = ChildFlag.__table__  # type: ignore[attr-defined]
_history = ChildHistory.__table__  # type: ignore[attr-defined]


def visible(principal: Principal) -> Any:
    """Town: its hukou town's children; school district: its villages'; district-wide roles: all."""
    return within_jurisdiction(principal, _c.c.hukou_town, _c.c.hukou_school_district, _c.c.district)


async def list_children(
    session: AsyncSession,
    principal: Principal,
    *,
    town: str | None,
    category: str | None,
    status: str | None,
    source: str | None,
    born_after: dt.date | None,
    born_on_or_before: dt.date | None,
    after: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    query = select(_c).where(visible(principal)).order_by(_c.c.id).limit(limit + 1)
    if town:
        query = query.where(_c.c.hukou_town == town)
    if category:
        query = query.where(_c.c.categories.contains(f",{category},", autoescape=True))
    if source:
        query = query.where(_c.c.sources.contains(f",{source},", autoescape=True))
    query = query.where(_c.c.status == status) if status else query.where(_c.c.status != "duplicate")
    if born_after:
        query = query.where(_c.c.birth_date > born_after)
    if born_on_or_before:
        query = query.where(_c.c.birth_date <= born_on_or_before)
    if after:
        query = query.where(_c.c.id > after)
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def get_visible(session: AsyncSession, principal: Principal, child_id: str) -> dict[str, Any] | None:
    row = (
        (await session.execute(select(_c).where(_c.c.id == child_id, visible(principal)))).mappings().first()
    )
    return dict(row) if row is not None else None


async def get_by_blind_index(
    session: AsyncSession, principal: Principal, blind: str
) -> dict[str, Any] | None:
    row = (
        (await session.execute(select(_c).where(_c.c.id_blind == blind, visible(principal))))
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def get_any(session: AsyncSession, child_id: str) -> dict[str, Any] | None:
    row = (await session.execute(select(_c).where(_c.c.id == child_id))).mappings().first()
    return dict(row) if row is not None else None


async def merged_ids(session: AsyncSession, child_id: str) -> list[str]:
    return list(
        (
            await session.execute(select(_c.c.id).where(_c.c.merged_into == child_id).order_by(_c.c.id))
        ).scalars()
    )


async def provenance(session: AsyncSession, record_ids: list[str]) -> list[dict[str, Any]]:
    query = (
        select(_attrs)
        .where(_attrs.c.child_id.in_(record_ids))
        .order_by(_attrs.c.attribute, _attrs.c.first_period, _attrs.c.department)
    )
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def flags(session: AsyncSession, record_ids: list[str]) -> list[dict[str, Any]]:
    query = (
        select(_flags)
        .where(_flags.c.child_id.in_(record_ids))
        .order_by(_flags.c.category, _flags.c.department)
    )
    return [dict(r) for r in (await session.execute(query)).mappings()]


async def history(session: AsyncSession, child_id: str) -> list[dict[str, Any]]:
    query = select(_history).where(_history.c.child_id == child_id).order_by(_history.c.at, _history.c.id)
    return [dict(r) for r in (await session.execute(query)).mappings()]
