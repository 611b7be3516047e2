"""Hukou corrections: change a child's registry status with an effective date, publish it, undo it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.db import utcnow
from baoxue.errors import Conflict, NotFound, Problem
from baoxue.service import ServiceContext
from baoxue.workdays import today_in_china
from registry.children import repository as children
from registry.children.merging import announce_status, merge_records, undo_merge
from registry.children.models import Child, ChildHistory
from registry.children.snapshots import refresh_snapshots
from registry.corrections.models import HukouCorrection

ALLOWED_FROM = {
    "active": ("deceased", "moved_out", "duplicate", "missing"),
    "missing": ("deceased", "moved_out", "duplicate"),
}
"""The corrections each status allows: an active child may become any; a missing one may be found
deceased, moved out or a duplicate registration (found alive and here: undo the ``missing`` correction).
``deceased`` and ``moved_out`` are final (the child died, or the hukou was cancelled here, 迁出注销: a
child who comes back is registered again by the police's feed): a wrong one is undone instead.
``duplicate`` (merged into another record) is final too: ``child_already_merged``."""

_corrections = HukouCorrection.__table__  # type: ignore[attr-defined]
_children = Child.__table__  # type: ignore[attr-defined]
_history = ChildHistory.__table__  # type: ignore[attr-defined]


async def correct_hukou(
    *,
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    child_id: str,
    kind: str,
    effective_date: dt.date,
    duplicate_of: str | None,
) -> dict[str, Any]:
    """Record a correction and change the child's status (``duplicate``: merge into ``duplicate_of``).

    Publishes ChildStatusChanged (and the survivor's ChildUpdated for a duplicate). 404 for a child
    outside the caller's jurisdiction; 409 when the child is already in that status, merged, or in a
    final status (``ALLOWED_FROM``); 422 for an effective date after today (China) or before the
    child's birth. A refused correction changes and publishes nothing.
    """
    child = await children.get_visible(session, principal, child_id)
    if child is None:
        raise NotFound("No such child.")
    if child["status"] == "duplicate":
        raise Conflict("The record is already merged into another.", code="child_already_merged")
    if child["status"] == kind:
        raise Conflict(f"The child's status is already {kind}.", code="correction_no_change")
    if kind not in ALLOWED_FROM.get(child["status"], ()):
        raise Conflict(
            f"The child's status {child['status']} is final; undo the correction that set it if it was wrong.",
            code="correction_status_final",
            current_status=child["status"],
        )
    if effective_date > today_in_china():
        raise Problem("The effective date is in the future.", code="correction_date_in_future", status=422)
    birth = child["birth_date"]
    if birth is not None and effective_date < birth:
        raise Problem(
            "The effective date is before the child's birth.", code="correction_date_before_birth", status=422
        )
    correction_id = str(uuid.uuid4())
    merge_id = None
    if kind == "duplicate":
        if not duplicate_of:
            raise Problem(
                "A duplicate registration names the record that remains (duplicate_of).",
                code="duplicate_of_required",
                status=422,
            )
        if await children.get_visible(session, principal, duplicate_of) is None:
            raise NotFound("No such child to merge into.")
        merge_id = await merge_records(
            session,
            ctx.outbox,
            survivor_id=duplicate_of,
            merged_id=child_id,
            reason="hukou_duplicate",
            evidence={"correction_id": correction_id},
            actor=principal.subject,
            effective_date=effective_date,
        )
    else:
        await session.execute(
            update(_children)
            .where(_children.c.id == child_id)
            .values(status=kind, status_effective=effective_date)
        )
        await announce_status(
            session, ctx.outbox, child, kind, child["status"], None, effective_date, correction_id
        )
        await refresh_snapshots(session, ctx.outbox, [child_id])
    values = {
        "id": correction_id,
        "child_id": child_id,
        "kind": kind,
        "effective_date": effective_date,
        "previous_status": child["status"],
        "duplicate_of": duplicate_of if kind == "duplicate" else None,
        "merge_id": merge_id,
        "created_by": principal.subject,
        "created_org": principal.org,
        "created_at": utcnow(),
    }
    await session.execute(insert(_corrections).values(**values))
    await session.execute(
        insert(_history).values(
            child_id=child_id,
            kind=f"hukou_{kind}",
            at=utcnow(),
            reference=correction_id,
            detail=json.dumps(
                {"effective_date": effective_date.isoformat(), "previous_status": child["status"]}
            ),
        )
    )
    return values | {"undone_at": None}


async def undo_correction(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, correction_id: str
) -> dict[str, Any]:
    """Reverse a correction: the previous status comes back (a duplicate merge is split); published again."""
    row = (
        (await session.execute(select(_corrections).where(_corrections.c.id == correction_id)))
        .mappings()
        .first()
    )
    if row is None or await children.get_visible(session, principal, row["child_id"]) is None:
        raise NotFound("No such correction.")
    if row["undone_at"] is not None:
        raise Conflict("This correction was already undone.", code="correction_already_undone")
    child = await children.get_any(session, row["child_id"])
    assert child is not None
    if row["kind"] == "duplicate" and row["merge_id"] is not None:
        await undo_merge(session, ctx.outbox, merge_id=row["merge_id"], actor=principal.subject)
    else:
        if child["status"] != row["kind"]:
            raise Conflict(
                "The child's status changed since; this correction cannot be undone.",
                code="correction_superseded",
            )
        await session.execute(
            update(_children)
            .where(_children.c.id == row["child_id"])
            .values(status=row["previous_status"], status_effective=None)
        )
        await announce_status(
            session,
            ctx.outbox,
            child,
            row["previous_status"],
            row["kind"],
            None,
            dt.date.today(),
            correction_id,
        )
        await refresh_snapshots(session, ctx.outbox, [row["child_id"]])
    now = utcnow()
    await session.execute(
        update(_corrections)
        .where(_corrections.c.id == correction_id)
        .values(undone_by=principal.subject, undone_at=now)
    )
    await session.execute(
        insert(_history).values(
            child_id=row["child_id"],
            kind="hukou_correction_undone",
            at=now,
            reference=correction_id,
            detail="{}",
        )
    )
    return dict(row) | {"undone_at": now}
