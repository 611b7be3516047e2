"""Reading children: jurisdiction, masking by role and stated purpose, and an audit entry for every read."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.errors import NotFound, Problem
from baoxue.pagination import Page, page_of
from baoxue.pii.citizen_id import normalise_id_number
from baoxue.pii.masking import mask_address, mask_id_number, mask_name, mask_phone
from baoxue.service import ServiceContext
from registry.children import repository
from registry.children.schemas import Assertion, ChildDetail, ChildSummary, Flag, HistoryEntry
from registry.feeds.validation import ID_AAD, PHONE_AAD


def may_unmask(principal: Principal) -> bool:
    """Unmasked personal data needs the permission *and* a stated purpose (X-Access-Purpose)."""
    return principal.can("child:read_unmasked") and bool(principal.purpose and principal.purpose.strip())


def _split(packed: str) -> list[str]:
    return [x for x in packed.split(",") if x]


def _id_number(ctx: ServiceContext, row: dict[str, Any], unmasked: bool) -> str | None:
    if not row["id_cipher"]:
        return None
    plain = ctx.cipher.decrypt(row["id_cipher"], associated_data=ID_AAD)
    return plain if unmasked else mask_id_number(plain)


def _phone(ctx: ServiceContext, token: str | None, unmasked: bool) -> str | None:
    """A guardian phone token shown: decrypted, then masked unless the caller may see it (and said why)."""
    if not token:
        return None
    plain = ctx.cipher.decrypt(token, associated_data=PHONE_AAD)
    return plain if unmasked else mask_phone(plain)


def _summary(ctx: ServiceContext, row: dict[str, Any], unmasked: bool) -> dict[str, Any]:
    name = row["name"]
    return {
        "id": row["id"],
        "name": name if unmasked or not name else mask_name(name),
        "id_number": _id_number(ctx, row, unmasked),
        "sex": row["sex"],
        "birth_date": row["birth_date"],
        "hukou_town": row["hukou_town"],
        "hukou_village": row["hukou_village"],
        "hukou_school_district": row["hukou_school_district"],
        "categories": _split(row["categories"]),
        "sources": _split(row["sources"]),
        "status": row["status"],
        "merged_into": row["merged_into"],
        "needs_review": row["needs_review"],
        "version": row["version"],
    }


async def list_children(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    town: str | None,
    category: str | None,
    status: str | None,
    source: str | None,
    age_min: int | None,
    age_max: int | None,
    on: dt.date,
    cursor: Any,
    limit: int,
) -> Page[ChildSummary]:
    """Children inside the caller's jurisdiction matching the filters (ages in full years on ``on``).

    Never contains a child outside the jurisdiction; the read is audited with the ids returned.
    """
    born_after = _years_before(on, age_max + 1) if age_max is not None else None
    born_on_or_before = _years_before(on, age_min) if age_min is not None else None
    rows = await repository.list_children(
        session,
        principal,
        town=town,
        category=category,
        status=status,
        source=source,
        born_after=born_after,
        born_on_or_before=born_on_or_before,
        after=cursor,
        limit=limit,
    )
    unmasked = may_unmask(principal)
    page = page_of(
        [ChildSummary.model_validate(_summary(ctx, r, unmasked)) for r in rows], limit, lambda c: c.id
    )
    await ctx.audit.record(
        session,
        principal,
        "list",
        "child",
        [c.id for c in page.items],
        detail=f"unmasked={unmasked} count={len(page.items)}",
    )
    return page


def _years_before(on: dt.date, years: int) -> dt.date:
    try:
        return on.replace(year=on.year - years)
    except ValueError:  # 29 February
        return on.replace(year=on.year - years, day=28)


async def child_detail(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, child_id: str
) -> ChildDetail:
    """One child with provenance (also of records merged into it), flags and history; 404 outside jurisdiction."""
    row = await repository.get_visible(session, principal, child_id)
    if row is None:
        raise NotFound("No such child.")
    return await _detail(session, ctx, principal, row, action="read")


async def lookup(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, id_number: str
) -> ChildDetail:
    """The child with this ID number (through the blind index), inside the caller's jurisdiction, else 404."""
    normalised = normalise_id_number(id_number)
    if not normalised:
        raise Problem(
            "The ID number is empty once spaces and separators are removed.",
            status=422,
            code="id_missing",
            errors=[{"field": "id_number", "code": "id_missing", "message": "empty"}],
        )
    blind = ctx.blind_index.of(normalised)
    row = await repository.get_by_blind_index(session, principal, blind)
    if row is None:
        raise NotFound("No child with this ID number in your jurisdiction.", code="child_not_found")
    if row["merged_into"]:
        survivor = await repository.get_visible(session, principal, row["merged_into"])
        row = survivor or row
    return await _detail(session, ctx, principal, row, action="lookup")


async def _detail(
    session: AsyncSession, ctx: ServiceContext, principal: Principal, row: dict[str, Any], *, action: str
) -> ChildDetail:
    unmasked = may_unmask(principal)
    members = await repository.merged_ids(session, row["id"])
    records = [row["id"], *members]
    provenance = await repository.provenance(session, records)
    personal = {"name", "hukou_address", "current_address", "guardian_name"}
    maskers = {
        "name": mask_name,
        "guardian_name": mask_name,
        "hukou_address": mask_address,
        "current_address": mask_address,
    }

    def asserted(a: dict[str, Any]) -> str:
        if a["value_cipher"]:  # an encrypted attribute (guardian phone): ``value`` is its blind index
            return _phone(ctx, a["value_cipher"], unmasked) or ""
        value: str = a["value"]
        return value if unmasked or a["attribute"] not in personal else maskers[a["attribute"]](value)

    assertions = [
        Assertion(
            id=a["id"],
            attribute=a["attribute"],
            department=a["department"],
            first_period=a["first_period"],
            last_period=a["last_period"],
            first_batch_id=a["first_batch_id"],
            last_batch_id=a["last_batch_id"],
            record_id=a["child_id"],
            value=asserted(a),
        )
        for a in provenance
    ]
    flags = [Flag.model_validate(f) for f in await repository.flags(session, records)]
    history = [
        HistoryEntry(
            kind=h["kind"],
            at=h["at"],
            batch_id=h["batch_id"],
            reference=h["reference"],
            detail=json.loads(h["detail"] or "{}"),
        )
        for h in await repository.history(session, row["id"])
    ]

    def shown(field: str) -> str | None:
        value = row[field]
        return value if unmasked or value is None else maskers[field](value)

    detail = ChildDetail(
        **_summary(ctx, row, unmasked),
        status_effective=row["status_effective"],
        hukou_address=shown("hukou_address"),
        current_address=shown("current_address"),
        guardian_name=shown("guardian_name"),
        guardian_phone=_phone(ctx, row["guardian_phone"], unmasked),
        disability_type=row["disability_type"],
        disability_grade=row["disability_grade"],
        unmasked=unmasked,
        merged_records=members,
        provenance=assertions,
        flags=flags,
        history=history,
    )
    await ctx.audit.record(session, principal, action, "child", [row["id"]], detail=f"unmasked={unmasked}")
    return detail
