"""The review queue: list items; accept or reject link candidates and other findings; undo merges."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.db import utcnow
from baoxue.errors import Conflict, Forbidden, NotFound
from baoxue.service import ServiceContext
from registry.children import repository as children_repository
from registry.children.merging import merge_records, undo_merge
from registry.children.models import Child, ChildMerge, ReviewItem
from registry.linkage import resolution

_reviews = ReviewItem.__table__  # type: ignore[attr-defined]
_children = Child.__table__  # type: ignore[attr-defined]
_merges = ChildMerge.__table__  # type: ignore[attr-defined]


def public(row: dict[str, Any]) -> dict[str, Any]:
    detail = json.loads(row["detail"] or "{}")
    return dict(row) | {"evidence": detail.get("evidence", detail)}


async def with_other_child(
    session: AsyncSession, ctx: ServiceContext, principal: Principal, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Give each item the other record it is about, as far as the caller may see it.

    - ``id_collision``: the child holding the row's ID number, as the record that remains after merges
      (what accepting merges into). Stored on the item when it opens (``merge.detach_collisions``); an
      item opened before that was stored is resolved from the row's encrypted ID number here.
    - ``link_candidate``: the candidate record, as stored.

    The other record is shown only when it is inside the caller's jurisdiction (the children's rule,
    ``children.repository.visible``); otherwise ``other_child_id`` is withheld and
    ``other_child_outside_jurisdiction`` says that one exists. No ID number is ever part of an item.
    """
    others: dict[int, str] = {}
    for row in rows:
        other = row.get("other_child_id")
        if row["kind"] == "id_collision" and other is None:
            try:
                other = await resolution.id_owner(session, ctx, row)
            except NotFound:  # the row or the holder is gone: nothing to compare with
                other = None
        if other is not None:
            others[row["id"]] = str(other)
    collisions = {others[r["id"]] for r in rows if r["kind"] == "id_collision" and r["id"] in others}
    current = await resolution.survivors(session, collisions)
    for row in rows:
        if row["kind"] == "id_collision" and row["id"] in others:
            others[row["id"]] = current.get(others[row["id"]], others[row["id"]])
    visible: set[str] = set()
    if others:
        visible = set(
            (
                await session.execute(
                    select(_children.c.id).where(
                        _children.c.id.in_(set(others.values())), children_repository.visible(principal)
                    )
                )
            ).scalars()
        )
    result = []
    for row in rows:
        other = others.get(row["id"])
        shown = other if other in visible else None
        result.append(
            row
            | {
                "other_child_id": shown,
                "other_child_outside_jurisdiction": other is not None and shown is None,
            }
        )
    return result


def _visible(principal: Principal) -> Any:
    """Items about a child inside the caller's jurisdiction, by the same columns as the children queries
    (hukou town, school district, district). Only district roles hold ``review:read`` today, so this
    passes every item of the district to them; it is what keeps another county's items out, and a town's
    view to its own children should a town role ever be given the queue."""
    return exists().where(_children.c.id == _reviews.c.child_id, children_repository.visible(principal))


async def list_items(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    kind: str | None,
    status: str | None,
    after: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Review items about children inside the caller's jurisdiction, oldest first (with their other
    record as far as the caller may see it: ``with_other_child``)."""
    query = select(_reviews).where(_visible(principal)).order_by(_reviews.c.id).limit(limit + 1)
    if kind:
        query = query.where(_reviews.c.kind == kind)
    query = query.where(_reviews.c.status == (status or "open"))
    if after is not None:
        query = query.where(_reviews.c.id > after)
    rows = [public(dict(r)) for r in (await session.execute(query)).mappings()]
    return await with_other_child(session, ctx, principal, rows)


async def get_item(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, item_id: int
) -> dict[str, Any]:
    """One review item inside the caller's jurisdiction (outside answers 404 like a missing one)."""
    row = (
        (await session.execute(select(_reviews).where(_reviews.c.id == item_id, _visible(principal))))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("No such review item.")
    [item] = await with_other_child(session, ctx, principal, [public(dict(row))])
    return item


async def decide(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    item_id: int,
    accept: bool,
    assertion_id: int | None = None,
    hukou_town: str | None = None,
    hukou_village: str | None = None,
    sex: str | None = None,
    birth_date: dt.date | None = None,
) -> dict[str, Any]:
    """Accept or reject an open item.

    Accepting a link candidate merges the two records (undoable); accepting an ID collision merges the
    row's record into the child holding that ID number; accepting a conflict gives the child the value
    of the chosen assertion (``assertion_id``), recorded with its provenance. A lapsed flag ends when
    accepted and is kept (active again) when rejected; an unmatched address takes the reviewer's hukou
    village or town (``hukou_village`` / ``hukou_town``, from the directory); a sex or birth date that
    disagrees with the ID number takes the value the reviewer keeps (``sex`` / ``birth_date``). Either way
    the children's ``needs_review`` is cleared once they have no open item left.
    """
    row = (
        (
            await session.execute(
                select(_reviews).where(_reviews.c.id == item_id, _visible(principal)).with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is None:  # missing, or about a child outside the caller's jurisdiction: the same answer
        raise NotFound("No such review item.")
    if row["status"] != "open":
        raise Conflict("This item was already decided.", code="review_already_decided")
    merge_id = None
    detail = json.loads(row["detail"] or "{}")
    survivor = row["other_child_id"]
    if accept and row["kind"] in ("link_candidate", "id_collision"):
        if row["kind"] == "id_collision":
            survivor = await resolution.collision_holder(session, ctx, dict(row))
        if not await _sees_child(session, principal, survivor):
            # merging into a record the caller may not see would act on (and reveal) a foreign child
            raise Forbidden(
                "The other record is outside your jurisdiction; a district reviewer decides this item.",
                code="outside_jurisdiction",
            )
        merge_id = await merge_records(
            session,
            ctx.outbox,
            survivor_id=survivor,
            merged_id=row["child_id"],
            reason="linkage_review" if row["kind"] == "link_candidate" else "id_collision_review",
            evidence={"review_item": item_id, **detail},
            actor=principal.subject,
        )
    elif accept and row["kind"] == "conflict":
        detail["chosen"] = await resolution.apply_conflict_choice(
            session, ctx, dict(row), assertion_id, principal.subject
        )
    elif row["kind"] == "flag_lapsed":
        detail["flag"] = await resolution.settle_lapsed_flag(
            session, ctx, dict(row), keep=not accept, actor=principal.subject
        )
    elif accept and row["kind"] in resolution.VALUE_KINDS:
        detail["chosen"] = await resolution.apply_row_value(
            session, ctx, principal, dict(row), sex=sex, birth_date=birth_date, actor=principal.subject
        )
    elif accept and row["kind"] == "address_unmatched":
        detail["chosen"] = await resolution.apply_address_choice(
            session,
            ctx,
            principal,
            dict(row),
            town=hukou_town,
            village=hukou_village,
            actor=principal.subject,
        )
    values: dict[str, Any] = {
        "status": "accepted" if accept else "rejected",
        "decided_by": principal.subject,
        "decided_at": utcnow(),
        "merge_id": merge_id,
        "detail": json.dumps(detail, ensure_ascii=False),
    }
    if accept and row["kind"] == "address_unmatched":
        values["hukou_town"] = detail["chosen"]["hukou_town"]
    if merge_id is not None and row["kind"] == "id_collision":
        values["other_child_id"] = survivor  # the record it was merged into
    await session.execute(update(_reviews).where(_reviews.c.id == item_id).values(**values))
    await resolution.settle_needs_review(session, [row["child_id"], survivor])
    [item] = await with_other_child(session, ctx, principal, [public(dict(row) | values)])
    return item


async def _sees_child(session: AsyncSession, principal: Principal, child_id: str | None) -> bool:
    if child_id is None:
        return False
    found = await session.execute(
        select(_children.c.id).where(_children.c.id == child_id, children_repository.visible(principal))
    )
    return found.first() is not None


async def undo(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, merge_id: int
) -> dict[str, Any]:
    """Undo a merge (automatic link, accepted candidate or duplicate hukou); its review item, if any, ends
    as ``undone`` (the reviewer's undoing is the decision now). An undone link is remembered by linkage:
    a later row with the same description as the merged record's row is not linked to the survivor again
    (``matching._separated``)."""
    merge = await undo_merge(session, ctx.outbox, merge_id=merge_id, actor=principal.subject)
    await session.execute(
        update(_reviews)
        .where(_reviews.c.merge_id == merge_id)
        .values(status="undone", decided_by=principal.subject, decided_at=utcnow())
    )
    return merge | {"undone_at": utcnow()}


async def list_merges(
    *, session: AsyncSession, child_id: str | None, after: int | None, limit: int
) -> list[dict[str, Any]]:
    query = select(_merges).order_by(_merges.c.id).limit(limit + 1)
    if child_id:
        query = query.where((_merges.c.survivor_id == child_id) | (_merges.c.merged_id == child_id))
    if after is not None:
        query = query.where(_merges.c.id > after)
    return [dict(r) for r in (await session.execute(query)).mappings()]
