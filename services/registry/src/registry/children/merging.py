"""Merging two child records into one (linkage, duplicate hukou) and undoing it; history is kept."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.registry import ChildStatusChanged
from baoxue.db import utcnow
from baoxue.errors import Conflict, NotFound
from baoxue.events.outbox import Outbox
from registry.children.models import Child, ChildHistory, ChildMerge
from registry.children.snapshots import refresh_snapshots

_children = Child.__table__  # type: ignore[attr-defined]
_merges = ChildMerge.__table__  # type: ignore[attr-defined]
_history = ChildHistory.__table__  # type: ignore[attr-defined]


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
    flags and sources count for the survivor. With an outbox, ChildStatusChanged and the survivor's
    ChildUpdated are published; without (inside a feed merge) the batch's snapshot step does it.
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
        await refresh_snapshots(session, outbox, [survivor_id, merged_id])
    return merge_id


async def undo_merge(session: AsyncSession, outbox: Outbox, *, merge_id: int, actor: str) -> dict[str, Any]:
    """Split a merge: the merged record gets its previous status back; both snapshots are republished."""
    merge = (await session.execute(select(_merges).where(_merges.c.id == merge_id))).mappings().first()
    if merge is None:
        raise NotFound("No such merge.")
    if merge["undone_at"] is not None:
        raise Conflict("This merge was already undone.", code="merge_already_undone")
    await session.execute(
        update(_merges).where(_merges.c.id == merge_id).values(undone_by=actor, undone_at=utcnow())
    )
    await session.execute(
        update(_children)
        .where(_children.c.id == merge["merged_id"])
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
            for cid, other in (
                (merge["merged_id"], merge["survivor_id"]),
                (merge["survivor_id"], merge["merged_id"]),
            )
        ],
    )
    merged = (
        (await session.execute(select(_children).where(_children.c.id == merge["merged_id"])))
        .mappings()
        .one()
    )
    if merged["version"] > 0:
        await announce_status(session, outbox, merged, merge["previous_status"], "duplicate", None, None)
    await refresh_snapshots(session, outbox, [merge["survivor_id"], merge["merged_id"]])
    return dict(merge)


async def announce_merged(
    session: AsyncSession, outbox: Outbox, merged: Sequence[tuple[str, str, str]]
) -> None:
    """ChildStatusChanged (``duplicate``, ``merged_into``) for records a feed's linkage merged into another,
    in bulk: (merged, survivor, previous status) each, as :func:`merge_records` announces one merge. Only
    records their consumers have heard of (version above 0); their snapshots are refreshed by the caller
    afterwards (the batch's snapshot step), as :func:`merge_records` does."""
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
    today = dt.date.today()
    await outbox.add_many(
        session,
        [
            (
                ChildStatusChanged(
                    child_id=r["id"],
                    status="duplicate",
                    previous_status=about[r["id"]][1],  # type: ignore[arg-type]
                    effective_date=today,
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
