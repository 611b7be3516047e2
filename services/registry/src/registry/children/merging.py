"""Merging two child records into one (linkage, duplicate hukou) and undoing it; history is kept."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.registry import ChildStatusChanged
from baoxue.db import utcnow
from baoxue.errors import Conflict, NotFound
from baoxue.events.outbox import Outbox
from registry.children.merge import CONTACT_CONFLICT_ATTRIBUTES, IDENTITY_ATTRIBUTES, ROW_REVIEW_CODES
from registry.children.models import Child, ChildAttribute, ChildFlag, ChildHistory, ChildMerge, ReviewItem
from registry.children.snapshots import refresh_snapshots
from registry.feeds.models import FeedBatch, FeedRow

_children = Child.__table__  # type: ignore[attr-defined]
_merges = ChildMerge.__table__  # type: ignore[attr-defined]
_history = ChildHistory.__table__  # type: ignore[attr-defined]
_flags = ChildFlag.__table__  # type: ignore[attr-defined]
_reviews = ReviewItem.__table__  # type: ignore[attr-defined]
_rows = FeedRow.__table__  # type: ignore[attr-defined]
_attrs = ChildAttribute.__table__  # type: ignore[attr-defined]
_batches = FeedBatch.__table__  # type: ignore[attr-defined]


async def merge_records(
    session: AsyncSession,
    outbox: Outbox | None,
    *,
    survivor_id: str,
    merged_id: str,
    reason: str,
    evidence: dict[str, Any],
    actor: str,
    effective_date: Any = None,
) -> int:
    """Mark ``merged_id`` as a duplicate of ``survivor_id``; returns the merge id.

    The merged record is kept (status ``duplicate``, ``merged_into``) so the merge can be undone; its
    flags and sources count for the survivor. ``merged_into`` names the record that remains: records
    merged into ``merged_id`` before now name ``survivor_id`` (the merges themselves keep who was merged
    into whom, which :func:`undo_merge` follows back). With an outbox, ChildStatusChanged and the
    survivor's ChildUpdated are published, and a ChildStatusChanged for each record re-pointed so
    (``duplicate`` to ``duplicate``, ``merged_into`` the survivor, :func:`announce_merged`); without
    (inside a feed merge) the batch's snapshot step does it.
    """
    if survivor_id == merged_id:
        raise Conflict("A record cannot be merged into itself.", code="merge_same_record")
    rows = {
        r["id"]: r
        for r in (
            await session.execute(select(_children).where(_children.c.id.in_((survivor_id, merged_id))))
        ).mappings()
    }
    survivor, merged = rows.get(survivor_id), rows.get(merged_id)
    if survivor is None or merged is None:
        raise NotFound("No such child.")
    if survivor["status"] == "duplicate" or merged["status"] == "duplicate":
        raise Conflict("One of the records is already merged into another.", code="merge_already_merged")
    result = await session.execute(
        insert(_merges).values(
            survivor_id=survivor_id,
            merged_id=merged_id,
            reason=reason,
            previous_status=merged["status"],
            evidence=json.dumps(evidence, ensure_ascii=False, default=str),
            created_by=actor,
            created_at=utcnow(),
        )
    )
    merge_id = int(cast(CursorResult[Any], result).inserted_primary_key[0])  # type: ignore[index]
    await session.execute(
        update(_children)
        .where(_children.c.id == merged_id)
        .values(status="duplicate", merged_into=survivor_id, status_effective=effective_date)
    )
    repointed = list(
        (
            await session.execute(
                update(_children)
                .where(_children.c.merged_into == merged_id)
                .values(merged_into=survivor_id)
                .returning(_children.c.id)
            )
        ).scalars()
    )
    await session.execute(
        insert(_history),
        [
            {
                "child_id": merged_id,
                "kind": "merged_into",
                "reference": survivor_id,
                "at": utcnow(),
                "detail": json.dumps({"merge_id": merge_id, "reason": reason}),
            },
            {
                "child_id": survivor_id,
                "kind": "absorbed",
                "reference": merged_id,
                "at": utcnow(),
                "detail": json.dumps({"merge_id": merge_id, "reason": reason}),
            },
        ],
    )
    if outbox is not None:
        await announce_status(
            session, outbox, merged, "duplicate", merged["status"], survivor_id, effective_date
        )
        await announce_merged(
            session, outbox, [(c, survivor_id, "duplicate") for c in repointed], effective_date=effective_date
        )
        await refresh_snapshots(session, outbox, [survivor_id, merged_id])
    return merge_id


async def undo_merge(session: AsyncSession, outbox: Outbox, *, merge_id: int, actor: str) -> dict[str, Any]:
    """Split a merge: the merged record gets its previous status back; the records concerned are republished.

    A chain of merges is followed both ways: records merged into the merged record before (which name the
    record that remains, :func:`merge_records`) name it again (:func:`_rejoin`), and what was fed to
    them and to it is found on the merge's survivor and on every record that survivor was merged into
    since (:func:`_chain`), and given back (:func:`reattribute_rows`). The flags of the merged record and
    of those records are replayed (:func:`replay_flags`).
    """
    merge = (await session.execute(select(_merges).where(_merges.c.id == merge_id))).mappings().first()
    if merge is None:
        raise NotFound("No such merge.")
    if merge["undone_at"] is not None:
        raise Conflict("This merge was already undone.", code="merge_already_undone")
    merged_id, survivor_id = merge["merged_id"], merge["survivor_id"]
    remained = (
        await session.execute(select(_children.c.merged_into).where(_children.c.id == merged_id))
    ).scalar()
    chain = await _chain(session, survivor_id)
    await session.execute(
        update(_merges).where(_merges.c.id == merge_id).values(undone_by=actor, undone_at=utcnow())
    )
    await session.execute(
        update(_children)
        .where(_children.c.id == merged_id)
        .values(status=merge["previous_status"], merged_into=None, status_effective=None)
    )
    await session.execute(
        insert(_history),
        [
            {
                "child_id": cid,
                "kind": "merge_undone",
                "reference": other,
                "at": utcnow(),
                "detail": json.dumps({"merge_id": merge_id}),
            }
            for cid, other in ((merged_id, survivor_id), (survivor_id, merged_id))
        ],
    )
    rejoined = await _rejoin(session, merged_id, remained)
    await reattribute_rows(session, merged_id=merged_id, members=[merged_id, *rejoined], chain=chain)
    records = list(dict.fromkeys([survivor_id, merged_id, *chain]))
    await replay_flags(session, records, of=merged_id)
    merged = (await session.execute(select(_children).where(_children.c.id == merged_id))).mappings().one()
    if merged["version"] > 0:
        await announce_status(session, outbox, merged, merge["previous_status"], "duplicate", None, None)
    # The records that name the restored record again: still duplicates, of another record now.
    await announce_merged(session, outbox, [(c, merged_id, "duplicate") for c in rejoined])
    await refresh_snapshots(session, outbox, [*records, *rejoined])
    return dict(merge)


async def _chain(session: AsyncSession, child_id: str) -> list[str]:
    """``child_id`` and the records it was merged into since, in order (the last is the record that
    remains): where feed rows about it may have gone. One step when ``merged_into`` names the record that
    remains; a record merged before that was so is followed further."""
    chain = [child_id]
    while True:
        after = (
            await session.execute(select(_children.c.merged_into).where(_children.c.id == chain[-1]))
        ).scalar()
        if after is None or after in chain:
            return chain
        chain.append(after)


async def _rejoin(session: AsyncSession, restored: str, remained: str | None) -> list[str]:
    """Records merged into ``restored`` (directly or through records merged into it) while it was merged
    into ``remained``: they named ``remained`` as the record that remains and name ``restored`` again.
    Found by following the merges not undone from each record that names ``remained``; returns them."""
    if remained is None:
        return []
    pointing = list(
        (await session.execute(select(_children.c.id).where(_children.c.merged_into == remained))).scalars()
    )
    if not pointing:
        return []
    parent: dict[str, str] = dict(
        (
            await session.execute(
                select(_merges.c.merged_id, _merges.c.survivor_id).where(
                    _merges.c.merged_id.in_(pointing), _merges.c.undone_at.is_(None)
                )
            )
        ).all()
    )
    rejoined = []
    for child in pointing:
        step, seen = parent.get(child), {child}
        while step in parent and step not in seen:
            seen.add(step)
            step = parent[step]
        if step == restored:
            rejoined.append(child)
    if rejoined:
        await session.execute(
            update(_children).where(_children.c.id.in_(rejoined)).values(merged_into=restored)
        )
    return rejoined


# Provenance of a feed row (registry.children.merge.PROVENANCE, computed here for one merge's few rows):
# attribute -> (the row's value as asserted, the encrypted value kept beside it).
_ASSERTED: dict[str, Any] = {
    "name": lambda r: (r.name, None),
    "sex": lambda r: (r.sex, None),
    "birth_date": lambda r: (r.birth_date.isoformat() if r.birth_date else None, None),
    "hukou_address": lambda r: (r.hukou_address, None),
    "hukou_village": lambda r: (r.hukou_village, None),
    "current_address": lambda r: (r.current_address, None),
    "guardian_name": lambda r: (r.guardian_name, None),
    "guardian_phone": lambda r: (r.guardian_phone_blind, r.guardian_phone),
    "disability_type": lambda r: (r.disability_type, None),
    "disability_grade": lambda r: (r.disability_grade, None),
}
# Contact values follow the latest period's feed (merge.update_contact_values); the disability's only DPF's.
_CONTACT = ("current_address", "guardian_name", "guardian_phone")
_DPF_CONTACT = ("disability_type", "disability_grade")


async def reattribute_rows(
    session: AsyncSession, *, merged_id: str, members: Sequence[str], chain: Sequence[str]
) -> int:
    """Give a merged record back the feed rows that reached another record through its ID number while it
    was merged (a later feed naming a hukou duplicate's ID number is resolved to the record that remains),
    with what they brought. ``members``: the record and the records merged into it again
    (:func:`_rejoin`), whose ID numbers' rows are its own as well; ``chain``: the records such rows may
    have reached (the merge's survivor and the records it was merged into since, :func:`_chain`).

    The provenance of the record and of the records that lose rows is rebuilt from their rows for the
    attributes and departments those rows asserted (an assertion kept keeps its id); a contact value
    (current address, guardian, phone; DPF's disability) those rows set last is the latest of each
    record's own rows again. Review items those rows opened go with them (:func:`_return_review_items`).
    Flags: :func:`replay_flags`, after this. Returns how many rows were given back.

    Not given back: a reviewer's choice of a contact value that the rows had set is replaced by the
    latest row's value (a choice between the values the merged record held then; see the undo
    endpoint's description). Rows without a usable ID number that linkage linked through the merged
    record are its own already (their provenance is on their own record).
    """
    blinds = [
        b
        for b in (
            await session.execute(select(_children.c.id_blind).where(_children.c.id.in_(members)))
        ).scalars()
        if b is not None
    ]
    lost_from = [c for c in chain if c not in members]
    if not blinds or not lost_from:
        return 0
    found = (_rows.c.id_blind.in_(blinds), _rows.c.child_id.in_(lost_from), _rows.c.outcome == "accepted")
    moved = (
        await session.execute(select(_rows.c.batch_id, _rows.c.row_number, _rows.c.child_id).where(*found))
    ).all()
    if not moved:
        return 0
    previous = {(b, n): child for b, n, child in moved}
    await session.execute(update(_rows).where(*found).values(child_id=merged_id))
    ids = [merged_id, *(c for c in lost_from if c in set(previous.values()))]
    rows = (
        await session.execute(
            select(_rows, _batches.c.department, _batches.c.period)
            .join(_batches, _batches.c.id == _rows.c.batch_id)
            .where(_rows.c.child_id.in_(ids), _rows.c.outcome == "accepted")
            .order_by(_batches.c.completed_at, _batches.c.id, _rows.c.row_number)
        )
    ).all()
    departments = {r.department for r in rows if (r.batch_id, r.row_number) in previous}
    # Provenance: (record, attribute, department, value) -> first batch/period, last batch, last period.
    wanted: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in rows:
        if r.department not in departments:
            continue
        for attribute, of in _ASSERTED.items():
            value, cipher = of(r)
            if value is None:
                continue
            key = (r.child_id, attribute, r.department, value)
            seen = wanted.get(key)
            if seen is None:
                wanted[key] = {
                    "first_batch_id": r.batch_id,
                    "first_period": r.period,
                    "last_batch_id": r.batch_id,
                    "last_period": r.period,
                    "value_cipher": cipher,
                }
            else:
                seen["last_batch_id"] = r.batch_id
                seen["last_period"] = max(seen["last_period"], r.period)
                seen["value_cipher"] = seen["value_cipher"] or cipher
    stored = (
        await session.execute(
            select(_attrs).where(_attrs.c.child_id.in_(ids), _attrs.c.department.in_(departments))
        )
    ).mappings()
    for a in stored:
        key = (a["child_id"], a["attribute"], a["department"], a["value"])
        if key not in wanted:
            await session.execute(_attrs.delete().where(_attrs.c.id == a["id"]))
        else:
            values = wanted.pop(key)
            values["value_cipher"] = a["value_cipher"] or values["value_cipher"]
            await session.execute(update(_attrs).where(_attrs.c.id == a["id"]).values(**values))
    for (child, attribute, department, value), values in wanted.items():
        await session.execute(
            insert(_attrs).values(
                child_id=child, attribute=attribute, department=department, value=value, **values
            )
        )
    # Contact values that the given-back rows set last: each record's own latest again (rows by period,
    # then in the order they were applied, as ``merge.update_contact_values`` lets the latest period's
    # value stand; a record that lost rows counted with them, as it was then).
    by_period = sorted(rows, key=lambda r: r.period)
    for child in ids:
        own_latest: dict[str, Any] = {}
        set_by_moved: dict[str, bool] = {}
        for r in by_period:
            was_moved = (r.batch_id, r.row_number) in previous
            if not (r.child_id == child or (was_moved and previous[r.batch_id, r.row_number] == child)):
                continue
            for column in _CONTACT + (_DPF_CONTACT if r.department == "dpf" else ()):
                value = getattr(r, column)
                if value is None:
                    continue
                set_by_moved[column] = was_moved
                if r.child_id == child:
                    own_latest[column] = value
        changes = {
            column: own_latest.get(column) for column, moved_last in set_by_moved.items() if moved_last
        }
        if changes:
            await session.execute(update(_children).where(_children.c.id == child).values(**changes))
    await _return_review_items(session, merged_id, rows, previous, ids)
    return len(moved)


async def _return_review_items(
    session: AsyncSession,
    restored: str,
    rows: Sequence[Any],
    previous: dict[tuple[str, int], str],
    ids: Sequence[str],
) -> None:
    """Review items that given-back rows opened go back with them to the ``restored`` record (``ids``:
    it, then the records that lost rows; ``rows``: the accepted rows of all of them, in order).

    - A row reason's item (``id_sex_mismatch``, ``address_unmatched``, …: the item of the row's batch and
      of the record the row was on): open, it moves. Decided, it stays with the record its decision acted
      on (an accepted value was given to that record), and the restored record gets an open item of that
      reason, as nobody decided about its row. One that a row staying there carries too stays as well.
    - A conflict: an open one on a record that lost rows whose values no longer conflict moves to the
      restored record where the restored record's values conflict on that attribute, else ends
      (``undone``). The restored record gets an item for an attribute on which the given-back rows brought
      it a value its own rows did not assert and its values now conflict, when none is open.
    """
    moved = [r for r in rows if (r.batch_id, r.row_number) in previous]
    if not moved:
        return
    now = utcnow()
    town = (await session.execute(select(_children.c.hukou_town).where(_children.c.id == restored))).scalar()
    open_on_restored = {
        (kind, attribute)
        for kind, attribute in await session.execute(
            select(_reviews.c.kind, _reviews.c.attribute).where(
                _reviews.c.child_id == restored, _reviews.c.status == "open"
            )
        )
    }

    async def open_item(kind: str, batch_id: str, attribute: str | None = None) -> None:
        await session.execute(
            insert(_reviews).values(
                kind=kind,
                status="open",
                child_id=restored,
                attribute=attribute,
                batch_id=batch_id,
                detail="{}",
                hukou_town=town,
                created_at=now,
            )
        )
        open_on_restored.add((kind, attribute))

    staying: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        if (r.batch_id, r.row_number) not in previous and r.child_id != restored:
            staying.setdefault((r.batch_id, r.child_id), set()).update((r.reasons or "").split(","))
    for r in moved:
        was_on = previous[r.batch_id, r.row_number]
        for code in (r.reasons or "").split(","):
            if code not in ROW_REVIEW_CODES:
                continue
            items = (
                await session.execute(
                    select(_reviews.c.id, _reviews.c.status).where(
                        _reviews.c.kind == code,
                        _reviews.c.batch_id == r.batch_id,
                        _reviews.c.child_id == was_on,
                    )
                )
            ).all()
            shared = code in staying.get((r.batch_id, was_on), set())
            for item_id, status in items:
                if status != "open" or shared:
                    continue
                if (code, None) in open_on_restored:  # the restored record has one open already
                    values: dict[str, Any] = {"status": "undone", "decided_at": now}
                else:
                    values = {"child_id": restored, "hukou_town": town}
                    open_on_restored.add((code, None))
                await session.execute(update(_reviews).where(_reviews.c.id == item_id).values(**values))
            if (code, None) not in open_on_restored:
                await open_item(code, r.batch_id)

    attributes = (*IDENTITY_ATTRIBUTES, *CONTACT_CONFLICT_ATTRIBUTES)
    assertions = (
        await session.execute(
            select(
                _attrs.c.child_id,
                _attrs.c.attribute,
                _attrs.c.department,
                _attrs.c.value,
                _attrs.c.last_period,
            ).where(_attrs.c.child_id.in_(ids), _attrs.c.attribute.in_(attributes))
        )
    ).all()
    conflicting = {child: _conflicting([a for a in assertions if a.child_id == child]) for child in ids}
    stale = (
        await session.execute(
            select(_reviews.c.id, _reviews.c.child_id, _reviews.c.attribute).where(
                _reviews.c.kind == "conflict",
                _reviews.c.status == "open",
                _reviews.c.child_id.in_([c for c in ids if c != restored]),
            )
        )
    ).all()
    for item_id, child, attribute in stale:
        if attribute in conflicting[child]:
            continue
        if attribute in conflicting[restored] and ("conflict", attribute) not in open_on_restored:
            values = {"child_id": restored, "hukou_town": town}
            open_on_restored.add(("conflict", attribute))
        else:
            values = {"status": "undone", "decided_at": now}
        await session.execute(update(_reviews).where(_reviews.c.id == item_id).values(**values))
    own = {
        (attribute, of(r)[0])
        for r in rows
        if r.child_id == restored and (r.batch_id, r.row_number) not in previous
        for attribute, of in _ASSERTED.items()
    }
    brought = {
        attribute
        for r in moved
        for attribute in attributes
        if (value := _ASSERTED[attribute](r)[0]) is not None and (attribute, value) not in own
    }
    for attribute in sorted(brought & conflicting[restored]):
        if ("conflict", attribute) not in open_on_restored:
            await open_item("conflict", moved[-1].batch_id, attribute)
    await session.execute(
        update(_children)
        .where(_children.c.id.in_(ids))
        .values(
            needs_review=exists().where(_reviews.c.child_id == _children.c.id, _reviews.c.status == "open")
        )
    )


def _conflicting(assertions: Sequence[Any]) -> set[str]:
    """The attributes on which one record's assertions conflict, as ``merge.open_conflicts`` finds them:
    an identity attribute with two values; a contact attribute whose departments' latest values differ."""
    out = set()
    for attribute in IDENTITY_ATTRIBUTES:
        if len({a.value for a in assertions if a.attribute == attribute}) > 1:
            out.add(attribute)
    for attribute in CONTACT_CONFLICT_ATTRIBUTES:
        of = [a for a in assertions if a.attribute == attribute]
        latest = {
            a.value
            for a in of
            if not any(o.department == a.department and o.last_period > a.last_period for o in of)
        }
        if len(latest) > 1 and len({a.department for a in of}) > 1:
            out.add(attribute)
    return out


async def _rows_counting_for(session: AsyncSession, ids: Sequence[str]) -> list[Any]:
    """(batch, categories, record) of the accepted feed rows whose flags count for each of ``ids``: the rows
    of the record itself, and those of the records merged into it (a feed confirms a linked row's flags on
    the record that remains, ``merge.confirm_flags``, and the flags of a merged record with those of the
    record that remains, ``merge.lapse_flags``)."""
    own = select(_rows.c.batch_id, _rows.c.categories, _rows.c.child_id.label("owner")).where(
        _rows.c.child_id.in_(ids), _rows.c.outcome == "accepted"
    )
    linked = (
        select(_rows.c.batch_id, _rows.c.categories, _children.c.merged_into.label("owner"))
        .select_from(_children.join(_rows, _rows.c.child_id == _children.c.id))
        .where(_children.c.merged_into.in_(ids), _rows.c.outcome == "accepted")
    )
    return list((await session.execute(own.union_all(linked))).all())


async def replay_flags(session: AsyncSession, ids: Sequence[str], *, of: str) -> None:
    """Recompute the category flags of the records ``ids`` (a merge's records, once it is undone) that the
    feed rows counting for record ``of`` assert: each (category, department) replayed over the department's
    committed batches in the order they were applied, as the feeds would have set it had the records never
    been merged — asserted: active (valid from the first period of a run of assertions), last confirmed;
    a later period's batch without it: lapsed. A flag no row counting for a record asserts any more is
    removed from it. A lapse the replay finds that was not there opens a ``flag_lapsed`` item; an open one
    the replay no longer finds is closed as ``undone``; a flag a reviewer ended stays ended.

    The records replayed are the records that remain for ``ids`` (one of them still merged into another
    is replayed with it). The flags of a record merged into one replayed are that record's
    (``merge.lapse_flags``): the replayed flag is kept on the record that remains, and theirs of the
    same category and department go (their open lapse items closed as ``undone``).

    For one merge: a few rows and batches, read whole.
    """
    remains = {
        c: r or c
        for c, r in await session.execute(
            select(_children.c.id, _children.c.merged_into).where(_children.c.id.in_(ids))
        )
    }
    ids = list(dict.fromkeys(remains.get(c, c) for c in ids))
    rows = await _rows_counting_for(session, ids)
    mine = [r for r in rows if r.owner == of]
    batch_ids = {r.batch_id for r in rows}
    info = {
        b.id: b
        for b in await session.execute(
            select(_batches.c.id, _batches.c.department, _batches.c.period).where(
                _batches.c.id.in_(batch_ids)
            )
        )
    }
    pairs = {
        (category, info[r.batch_id].department)
        for r in mine
        if r.batch_id in info
        for category in (r.categories or "").split(",")
        if category
    }
    if not pairs:
        return
    departments = sorted({d for _, d in pairs})
    applied = (
        await session.execute(
            select(_batches.c.id, _batches.c.department, _batches.c.period, _batches.c.delivery_complete)
            .where(
                _batches.c.department.in_(departments),
                _batches.c.mode == "commit",
                _batches.c.status == "completed",
            )
            .order_by(_batches.c.completed_at, _batches.c.id)
        )
    ).all()
    asserted: dict[tuple[str, str, str], set[str]] = {}  # (record, category, department) -> batches
    for r in rows:
        if r.batch_id in info:
            for category in (r.categories or "").split(","):
                key = (r.owner, category, info[r.batch_id].department)
                asserted.setdefault(key, set()).add(r.batch_id)
    members: dict[str, list[str]] = {}
    for member, owner in await session.execute(
        select(_children.c.id, _children.c.merged_into).where(_children.c.merged_into.in_(ids))
    ):
        members.setdefault(owner, []).append(member)
    held = [*ids, *(m for group in members.values() for m in group)]
    existing = {
        (f["child_id"], f["category"], f["department"]): f
        for f in (
            await session.execute(
                select(_flags).where(_flags.c.child_id.in_(held), _flags.c.department.in_(departments))
            )
        ).mappings()
    }
    towns = dict(
        (c.id, c.hukou_town)
        for c in await session.execute(
            select(_children.c.id, _children.c.hukou_town).where(_children.c.id.in_(ids))
        )
    )
    now = utcnow()

    async def close_lapse_item(child: str, category: str, batch_id: str | None) -> None:
        await session.execute(
            update(_reviews)
            .where(
                _reviews.c.kind == "flag_lapsed",
                _reviews.c.status == "open",
                _reviews.c.child_id == child,
                _reviews.c.attribute == category,
                _reviews.c.batch_id == batch_id,
            )
            .values(status="undone", decided_at=now)
        )

    for child in ids:
        for category, department in sorted(pairs):
            flag = _replayed(applied, department, asserted.get((child, category, department), set()))
            old = existing.get((child, category, department))
            where = (
                (_flags.c.child_id == child)
                & (_flags.c.category == category)
                & (_flags.c.department == department)
            )
            ended = old is not None and old["status"] == "ended"
            for member in members.get(child, []):
                theirs = existing.get((member, category, department))
                if theirs is None:
                    continue
                ended = ended or theirs["status"] == "ended"
                if theirs["status"] == "lapsed":
                    await close_lapse_item(member, category, theirs["lapsed_batch_id"])
                await session.execute(_flags.delete().where(_flags.c.id == theirs["id"]))
            if (
                old is not None
                and old["status"] == "lapsed"
                and (
                    flag is None
                    or flag["status"] != "lapsed"
                    or flag["lapsed_batch_id"] != old["lapsed_batch_id"]
                )
            ):
                await close_lapse_item(child, category, old["lapsed_batch_id"])
            if flag is None:
                if old is not None:
                    await session.execute(_flags.delete().where(where))
                continue
            if ended and flag["status"] == "lapsed":
                flag["status"] = "ended"  # the reviewer's decision on that lapse stands
            if old is None:
                await session.execute(
                    insert(_flags).values(child_id=child, category=category, department=department, **flag)
                )
            else:
                await session.execute(update(_flags).where(where).values(**flag))
            newly_lapsed = flag["status"] == "lapsed" and (
                old is None or old["status"] != "lapsed" or old["lapsed_batch_id"] != flag["lapsed_batch_id"]
            )
            if newly_lapsed:
                await session.execute(
                    insert(_reviews).values(
                        kind="flag_lapsed",
                        status="open",
                        child_id=child,
                        attribute=category,
                        batch_id=flag["lapsed_batch_id"],
                        detail="{}",
                        hukou_town=towns.get(child),
                        created_at=now,
                    )
                )
                await session.execute(
                    update(_children).where(_children.c.id == child).values(needs_review=True)
                )


def _replayed(applied: Sequence[Any], department: str, asserting: set[str]) -> dict[str, Any] | None:
    """A flag as ``confirm_flags`` and ``lapse_flags`` leave it after the department's batches ``applied``
    (in order), of which ``asserting`` assert it; None when none does. Only a batch that completes the
    department's delivery for its period lapses; a lapsed flag asserted again by a batch of the period that
    lapsed it keeps its ``valid_from``."""
    flag: dict[str, Any] | None = None
    for batch in applied:
        if batch.department != department:
            continue
        if batch.id in asserting:
            if flag is None:
                flag = {
                    "valid_from": batch.period,
                    "first_batch_id": batch.id,
                    "last_confirmed": batch.period,
                }
            elif flag["status"] != "active" and flag["lapsed_period"] != batch.period:
                flag["valid_from"] = batch.period
            flag |= {
                "status": "active",
                "last_confirmed": max(flag["last_confirmed"], batch.period),
                "last_batch_id": batch.id,
                "lapsed_period": None,
                "lapsed_batch_id": None,
            }
        elif (
            flag is not None
            and flag["status"] == "active"
            and flag["last_confirmed"] < batch.period
            and batch.delivery_complete
        ):
            flag |= {"status": "lapsed", "lapsed_period": batch.period, "lapsed_batch_id": batch.id}
    return flag


async def announce_merged(
    session: AsyncSession,
    outbox: Outbox,
    merged: Sequence[tuple[str, str, str]],
    *,
    effective_date: dt.date | None = None,
) -> None:
    """ChildStatusChanged (``duplicate``, ``merged_into``) for records a feed's linkage merged into another,
    in bulk: (merged, survivor, previous status) each, as :func:`merge_records` announces one merge. Only
    records their consumers have heard of (version above 0); their snapshots are refreshed by the caller
    afterwards (the batch's snapshot step), as :func:`merge_records` does.

    Also for a record already merged whose record that remains changed (a merge of the record it names,
    or the undoing of the merge that made it name another): previous status ``duplicate`` as well, so
    ``status`` equals ``previous_status`` and only ``merged_into`` is new. ``effective_date``: the
    merge's (today unless given)."""
    if not merged:
        return
    about = {m: (survivor, previous) for m, survivor, previous in merged}
    rows = (
        (
            await session.execute(
                select(
                    _children.c.id,
                    _children.c.version,
                    _children.c.hukou_town,
                    _children.c.hukou_school_district,
                )
                .where(_children.c.id.in_(about), _children.c.version > 0)
                .order_by(_children.c.id)
            )
        )
        .mappings()
        .all()
    )
    if not rows:
        return
    await session.execute(
        update(_children)
        .where(_children.c.id.in_([r["id"] for r in rows]))
        .values(version=_children.c.version + 1)
    )
    effective = effective_date or dt.date.today()
    await outbox.add_many(
        session,
        [
            (
                ChildStatusChanged(
                    child_id=r["id"],
                    status="duplicate",
                    previous_status=about[r["id"]][1],  # type: ignore[arg-type]
                    effective_date=effective,
                    merged_into=about[r["id"]][0],
                    hukou_town=r["hukou_town"],
                    hukou_school_district=r["hukou_school_district"],
                ),
                r["id"],
                r["version"] + 1,
            )
            for r in rows
        ],
    )


async def announce_status(
    session: AsyncSession,
    outbox: Outbox,
    child: Any,
    status: str,
    previous: str,
    merged_into: str | None,
    effective_date: Any,
    correction_id: str | None = None,
) -> None:
    version = child["version"] + 1
    await session.execute(update(_children).where(_children.c.id == child["id"]).values(version=version))
    await outbox.add(
        session,
        ChildStatusChanged(
            child_id=child["id"],
            status=status,
            previous_status=previous,  # type: ignore[arg-type]
            effective_date=effective_date or dt.date.today(),
            merged_into=merged_into,
            correction_id=correction_id,
            hukou_town=child["hukou_town"],
            hukou_school_district=child["hukou_school_district"],
        ),
        subject=child["id"],
        sequence=version,
    )
