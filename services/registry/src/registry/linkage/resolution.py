"""What accepting a review item does to the child records.

- ``conflict``: the reviewer chooses one of the conflicting assertions; its value becomes the child's
  (derived columns too: name → pinyin, hukou village → town and school district), and the choice is
  recorded with its provenance (assertion id, department, batch) in the child's history and on the item.
- ``id_collision``: the row's ID number is right after all: its provisional record is merged into the
  child that holds that ID number.
- ``link_candidate``: the two records are merged (``merging.merge_records``).
- ``flag_lapsed``: accepting ends the lapsed category flag (status ``ended``); rejecting keeps it (active
  again, the child's categories include it again). Either is recorded in the child's history with the
  flag's provenance (department, periods, the batch that lapsed it).
- ``address_unmatched``: the reviewer names the village (or the town) of the hukou address; checked
  against the organisation directory, it becomes the child's hukou town, village and school district,
  recorded with the batch whose address matched nothing.
- ``id_sex_mismatch``, ``id_birth_date_mismatch``: the reviewer names the sex or birth date the child
  keeps (the ID number's, the row's, or another); checked, it becomes the child's, with the reviewer's
  decision as its source.

Nothing here writes personal values into history or items: ids, attribute and department codes only.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.db import utcnow
from baoxue.errors import Forbidden, NotFound, Problem
from baoxue.pii.citizen_id import IdReason, age_on, normalise_id_number
from baoxue.service import ServiceContext
from registry.children.models import Child, ChildAttribute, ChildFlag, ChildHistory, ReviewItem
from registry.children.snapshots import refresh_snapshots
from registry.feeds.models import FeedBatch, FeedRow
from registry.feeds.validation import ID_AAD, MAX_AGE, MIN_AGE, name_pinyin
from registry.settings import RegistrySettings

_children = Child.__table__  # type: ignore[attr-defined]
_attrs = ChildAttribute.__table__  # type: ignore[attr-defined]
_history = ChildHistory.__table__  # type: ignore[attr-defined]
_reviews = ReviewItem.__table__  # type: ignore[attr-defined]
_rows = FeedRow.__table__  # type: ignore[attr-defined]
_flags = ChildFlag.__table__  # type: ignore[attr-defined]
_batches = FeedBatch.__table__  # type: ignore[attr-defined]

# Attributes a conflict can be about → the child column that takes the chosen value.
APPLICABLE = {
    "name",
    "sex",
    "birth_date",
    "hukou_village",
    "hukou_address",
    "current_address",
    "guardian_name",
    "guardian_phone",
    "disability_type",
    "disability_grade",
}


async def apply_conflict_choice(
    session: AsyncSession, ctx: ServiceContext, item: dict[str, Any], assertion_id: int | None, actor: str
) -> dict[str, Any]:
    """Give the child the value of the chosen assertion; returns what was chosen (for the item's detail)."""
    if assertion_id is None:
        raise Problem(
            "Accepting a conflict needs the assertion to keep: assertion_id (the ids are in the child's provenance).",
            status=422,
            code="review_choice_required",
            errors=[{"field": "assertion_id", "code": "missing", "message": "required for a conflict"}],
        )
    child_id, attribute = item["child_id"], item["attribute"]
    records = [child_id, *(await _merged_into(session, child_id))]
    chosen = (
        (
            await session.execute(
                select(_attrs).where(
                    _attrs.c.id == assertion_id,
                    _attrs.c.attribute == attribute,
                    _attrs.c.child_id.in_(records),
                )
            )
        )
        .mappings()
        .first()
    )
    if chosen is None or attribute not in APPLICABLE:
        raise Problem(
            "That assertion is not one of this conflict's values.",
            status=422,
            code="review_choice_invalid",
            errors=[
                {
                    "field": "assertion_id",
                    "code": "not_in_conflict",
                    "message": "not a value of this conflict",
                }
            ],
        )
    await session.execute(
        update(_children)
        .where(_children.c.id == child_id)
        .values(**_column_values(ctx, attribute, chosen), updated_at=utcnow())
    )
    choice = {
        "attribute": attribute,
        "assertion_id": chosen["id"],
        "department": chosen["department"],
        "batch_id": chosen["last_batch_id"],
        "period": chosen["last_period"],
    }
    await session.execute(
        insert(_history).values(
            child_id=child_id,
            kind="conflict_resolved",
            at=utcnow(),
            batch_id=chosen["last_batch_id"],
            reference=str(item["id"]),
            detail=json.dumps(choice | {"review_item": item["id"], "decided_by": actor}),
        )
    )
    await refresh_snapshots(session, ctx.outbox, [child_id])
    return choice


def _column_values(ctx: ServiceContext, attribute: str, chosen: Any) -> dict[str, Any]:
    value: str = chosen["value"]
    if attribute == "guardian_phone":  # encrypted: ``value`` is the blind index, the token is kept aside
        return {"guardian_phone": chosen["value_cipher"]}
    if attribute == "name":
        return {"name": value, "name_pinyin": name_pinyin(value)}
    if attribute == "birth_date":
        return {"birth_date": dt.date.fromisoformat(value)}
    if attribute == "hukou_village":
        town = ctx.directory.town_of(value)
        district = ctx.directory.school_district_for(town, value)
        return {
            "hukou_village": value,
            "hukou_town": town,
            "hukou_school_district": district.code if district is not None else None,
        }
    return {attribute: value}


async def settle_lapsed_flag(
    session: AsyncSession, ctx: ServiceContext, item: dict[str, Any], *, keep: bool, actor: str
) -> dict[str, Any]:
    """End (accepted) or keep (rejected) the flag a ``flag_lapsed`` item is about; returns what was done.

    A flag its department asserted again since is active already: nothing changes (``"effect": "none"``).
    The same category's flags of records merged into the item's record that the same batch lapsed are
    settled with it (their lapse is one item: ``merge.lapse_flags``); the item's own record's flag is the
    one recorded.
    """
    group = [item["child_id"], *await _merged_into(session, item["child_id"])]
    flags = (
        (
            await session.execute(
                select(_flags)
                .where(
                    _flags.c.child_id.in_(group),
                    _flags.c.category == item["attribute"],
                    _flags.c.lapsed_batch_id == item["batch_id"],
                    _flags.c.status == "lapsed",
                )
                .with_for_update()
            )
        )
        .mappings()
        .all()
    )
    if not flags:
        return {"effect": "none", "reason": "flag_asserted_again"}
    flag = min(flags, key=lambda f: (f["child_id"] != item["child_id"], f["id"]))
    values: dict[str, Any] = (
        {"status": "active", "lapsed_period": None, "lapsed_batch_id": None} if keep else {"status": "ended"}
    )
    await session.execute(update(_flags).where(_flags.c.id.in_([f["id"] for f in flags])).values(**values))
    done = {
        "effect": "flag_kept" if keep else "flag_ended",
        "category": flag["category"],
        "department": flag["department"],
        "valid_from": flag["valid_from"],
        "last_confirmed": flag["last_confirmed"],
        "lapsed_period": flag["lapsed_period"],
        "lapsed_batch_id": flag["lapsed_batch_id"],
    }
    await _record(session, item, done["effect"], flag["lapsed_batch_id"], done, actor)
    await refresh_snapshots(session, ctx.outbox, await _owners(session, [item["child_id"]]))
    return done


async def apply_address_choice(
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    item: dict[str, Any],
    *,
    town: str | None,
    village: str | None,
    actor: str,
) -> dict[str, Any]:
    """Give the child of an ``address_unmatched`` item the hukou town/village the reviewer chose."""
    directory = ctx.directory
    if village is None and town is None:
        raise Problem(
            "Accepting an unmatched address needs the hukou village (or town) code: hukou_village or hukou_town.",
            status=422,
            code="review_choice_required",
            errors=[{"field": "hukou_village", "code": "missing", "message": "required for an address"}],
        )
    if village is not None:
        known = directory.village(village)
        if known is None or (town is not None and town != known.town):
            raise _invalid_place("hukou_village", "not a village of the directory (or not of that town)")
        town = known.town
    assert town is not None
    org = directory.get(town)
    if org is None or org.kind != "town":
        raise _invalid_place("hukou_town", "not a town of the directory")
    if not principal.covers(town):
        raise Forbidden("The town is outside your jurisdiction.", code="outside_jurisdiction")
    district = directory.school_district_for(town, village)
    [owner] = await _owners(session, [item["child_id"]])
    before = (
        (
            await session.execute(
                select(_children.c.hukou_town, _children.c.hukou_village).where(_children.c.id == owner)
            )
        )
        .mappings()
        .one()
    )
    place = {
        "hukou_town": town,
        "hukou_village": village,
        "hukou_school_district": district.code if district is not None else None,
    }
    await session.execute(
        update(_children).where(_children.c.id == owner).values(**place, updated_at=utcnow())
    )
    department = (
        await session.execute(select(_batches.c.department).where(_batches.c.id == item["batch_id"]))
    ).scalar()
    chosen = place | {
        "previous_town": before["hukou_town"],
        "previous_village": before["hukou_village"],
        "batch_id": item["batch_id"],
        "department": department,
    }
    await _record(session, item | {"child_id": owner}, "address_resolved", item["batch_id"], chosen, actor)
    await refresh_snapshots(session, ctx.outbox, [owner])
    return chosen


VALUE_KINDS: dict[str, str] = {IdReason.SEX_MISMATCH: "sex", IdReason.BIRTH_DATE_MISMATCH: "birth_date"}
"""Row reasons whose item is settled by the value the child keeps → the attribute that value is of. The
other reasons of severity review concern the ID number itself (its address code: the police's number,
corrected by the police's feed) or the hukou place (``apply_address_choice``)."""


async def apply_row_value(
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    item: dict[str, Any],
    *,
    sex: str | None,
    birth_date: dt.date | None,
    actor: str,
) -> dict[str, Any]:
    """Give the child of an ``id_sex_mismatch`` / ``id_birth_date_mismatch`` item the value the reviewer
    keeps; returns what was decided (for the item's detail).

    The value is the one of the item's attribute (the other is refused: 422 ``review_value_invalid``, as
    is a birth date that is not of school age, 6-14, on the cut-off of the period of the item's batch: the
    rule the feed applied to the row). It becomes the value of the record that remains, and is recorded
    with its source, the reviewer's decision: the child's history (``sex_resolved`` /
    ``birth_date_resolved``: review item, reviewer, the batch and department of the row, whether the value
    is the ID number's, the row's or neither, whether it changed the record) and the item; the decision is
    audited. No value is written into history, item or audit.
    """
    attribute = VALUE_KINDS[item["kind"]]
    given: dict[str, Any] = {"sex": sex, "birth_date": birth_date}
    value = given[attribute]
    if value is None:
        raise Problem(
            f"Accepting this item needs the value the child keeps: {attribute}.",
            status=422,
            code="review_choice_required",
            errors=[{"field": attribute, "code": "missing", "message": f"required for {item['kind']}"}],
        )
    others = [f for f, v in given.items() if v is not None and f != attribute]
    if others:
        raise Problem(
            f"This item is about {attribute}; no other value can be kept with it.",
            status=422,
            code="review_value_invalid",
            errors=[
                {"field": f, "code": "not_for_this_item", "message": f"not a value of {item['kind']}"}
                for f in others
            ],
        )
    row = (
        (
            await session.execute(
                select(
                    _rows.c.sex,
                    _rows.c.birth_date,
                    _rows.c.id_birth_date,
                    _batches.c.period,
                    _batches.c.department,
                )
                .join(_batches, _batches.c.id == _rows.c.batch_id)
                .where(
                    _rows.c.batch_id == item["batch_id"],
                    _rows.c.child_id == item["child_id"],
                    _rows.c.outcome == "accepted",
                )
                .order_by(_rows.c.row_number)
            )
        )
        .mappings()
        .first()
    )
    if attribute == "birth_date":
        settings: RegistrySettings = ctx.settings  # type: ignore[assignment]
        period = row["period"] if row is not None else f"{dt.date.today().year}-09"
        cutoff = settings.cutoff_for(period)
        if not (value <= cutoff and MIN_AGE <= age_on(value, cutoff) <= MAX_AGE):
            raise Problem(
                "That birth date is not of compulsory school age (6-14) on the cut-off date of the feed period.",
                status=422,
                code="review_value_invalid",
                errors=[
                    {
                        "field": "birth_date",
                        "code": "age_out_of_window",
                        "message": "not of compulsory school age (6-14) on the cut-off date",
                    }
                ],
            )
    [owner] = await _owners(session, [item["child_id"]])
    before = (
        await session.execute(select(_children.c[attribute]).where(_children.c.id == owner))
    ).scalar_one()
    await session.execute(
        update(_children).where(_children.c.id == owner).values({attribute: value, "updated_at": utcnow()})
    )
    decided = {
        "attribute": attribute,
        "source": "review",
        "agrees_with": _agrees_with(attribute, value, row),
        "changed": before != value,
        "batch_id": item["batch_id"],
        "department": row["department"] if row is not None else None,
    }
    await _record(
        session, item | {"child_id": owner}, f"{attribute}_resolved", item["batch_id"], decided, actor
    )
    await ctx.audit.record(
        session,
        principal,
        "decide",
        "child",
        [owner],
        detail=f"review_item={item['id']} kind={item['kind']} attribute={attribute}",
    )
    await refresh_snapshots(session, ctx.outbox, [owner])
    return decided


def _agrees_with(attribute: str, value: Any, row: Any) -> str | None:
    """Whose value the reviewer kept: ``id_number``, ``row`` (what the row stated), or ``neither``.

    A sex mismatch's row states the sex the ID number does not give, so the ID number's is the other one.
    """
    if row is None:
        return None
    if attribute == "sex":
        stated = row["sex"]
        from_id = {"M": "F", "F": "M"}.get(stated or "")
    else:
        stated, from_id = row["birth_date"], row["id_birth_date"]
    if value == from_id:
        return "id_number"
    return "row" if value == stated else "neither"


def _invalid_place(field: str, message: str) -> Problem:
    return Problem(
        "That code is not a hukou place of the directory.",
        status=422,
        code="review_choice_invalid",
        errors=[{"field": field, "code": "unknown_place", "message": message}],
    )


async def _record(
    session: AsyncSession,
    item: dict[str, Any],
    kind: str,
    batch_id: str | None,
    detail: dict[str, Any],
    actor: str,
) -> None:
    """A history entry of a review decision (codes and ids only)."""
    await session.execute(
        insert(_history).values(
            child_id=item["child_id"],
            kind=kind,
            at=utcnow(),
            batch_id=batch_id,
            reference=str(item["id"]),
            detail=json.dumps(detail | {"review_item": item["id"], "decided_by": actor}),
        )
    )


async def survivors(session: AsyncSession, child_ids: Collection[str]) -> dict[str, str]:
    """Each id → the record that remains for it (a merged record's survivor, else the record itself);
    ids of no record are left out."""
    if not child_ids:
        return {}
    rows = await session.execute(
        select(_children.c.id, func.coalesce(_children.c.merged_into, _children.c.id)).where(
            _children.c.id.in_(child_ids)
        )
    )
    return {str(child_id): str(survivor) for child_id, survivor in rows}


async def _owners(session: AsyncSession, child_ids: list[str]) -> list[str]:
    """The records that remain for these ids (the ids themselves when no record is found)."""
    return list((await survivors(session, child_ids)).values()) or list(child_ids)


async def _merged_into(session: AsyncSession, child_id: str) -> list[str]:
    return list(
        (await session.execute(select(_children.c.id).where(_children.c.merged_into == child_id))).scalars()
    )


async def collision_holder(session: AsyncSession, ctx: ServiceContext, item: dict[str, Any]) -> str:
    """The child an ``id_collision`` item's row collided with, as the record that remains after merges.

    From the holder stored on the item when it opened, as the review list shows it; the row's encrypted
    ID number is read (:func:`id_owner`) only for an item opened before the holder was stored.
    """
    stored = item.get("other_child_id")
    if stored is None:
        return await id_owner(session, ctx, item)
    [owner] = await _owners(session, [str(stored)])
    return owner


async def id_owner(session: AsyncSession, ctx: ServiceContext, item: dict[str, Any]) -> str:
    """The child holding the ID number of an ``id_collision`` row (the record that remains after merges)."""
    token = (
        await session.execute(
            select(_rows.c.id_cipher).where(
                _rows.c.batch_id == item["batch_id"], _rows.c.child_id == item["child_id"]
            )
        )
    ).scalar()
    if not token:
        raise NotFound("The row of this item has no ID number any more.")
    blind = ctx.blind_index.of(normalise_id_number(ctx.cipher.decrypt(token, associated_data=ID_AAD)))
    owner = (
        await session.execute(
            select(func.coalesce(_children.c.merged_into, _children.c.id)).where(
                _children.c.id_blind == blind
            )
        )
    ).scalar()
    if owner is None:
        raise NotFound("No child holds this ID number any more.")
    return str(owner)


async def settle_needs_review(session: AsyncSession, child_ids: list[str]) -> None:
    """``needs_review`` follows the open items: cleared once a child has none left."""
    ids = [c for c in child_ids if c]
    if not ids:
        return
    still_open = select(_reviews.c.child_id).where(_reviews.c.status == "open", _reviews.c.child_id.in_(ids))
    await session.execute(
        update(_children)
        .where(_children.c.id.in_(ids), _children.c.id.not_in(still_open))
        .values(needs_review=False)
    )
