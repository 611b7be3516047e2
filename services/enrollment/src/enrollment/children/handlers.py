"""Handlers of the registry's child events: keep the read model and the student records' links current,
and flag the verification campaigns for a re-run when a status change can change a child's outcome.

Each event type has a per-event handler and a set-based one (``on_many``) that applies a run of
consecutive events of that type, in stream order, with the same effect as the per-event handler
applied to each in turn (the consumer runner falls back to the per-event one after a failed batch
and on replay). A run may hold several events of one child: the set-based handler applies the k-th
event of every child in its k-th statement ("rounds"), so each statement touches a child once and the
stored sequence decides, as one by one, whether an event is applied or stale.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.registry import ChildSnapshot, ChildStatusChanged
from baoxue.db import utcnow
from baoxue.events.consumer import ReceivedEvent
from baoxue.observability import reset_trace_id, set_trace_id
from baoxue.service import ServiceContext
from enrollment.children import repository
from enrollment.students import repository as students
from enrollment.students.transitions import apply_status
from enrollment.verification.refresh import reclassifies, request_refresh

Handler = Callable[[AsyncSession, ReceivedEvent[Any]], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, list[ReceivedEvent[Any]]], Awaitable[None]]

E = TypeVar("E", bound=ReceivedEvent[Any])


def _snapshot_row(event: ReceivedEvent[ChildSnapshot], now: Any) -> dict[str, Any]:
    data = event.data
    return {
        "child_id": data.child_id,
        "id_blind_index": data.id_blind_index,
        "birth_date": data.birth_date,
        "sex": data.sex,
        "hukou_town": data.hukou_town,
        "hukou_village": data.hukou_village,
        "hukou_school_district": data.hukou_school_district,
        "categories": ",".join(sorted(data.categories)),
        "disability_type": data.disability_type,
        "status": data.status,
        "merged_into": None,
        "sequence": event.envelope.sequence,
        "updated_at": now,
    }


def rounds(events: Sequence[E]) -> list[list[tuple[int, E]]]:
    """Split a run into rounds: round k holds the k-th event of each child (with its position), in
    child id order, so concurrent consumers (several replicas) lock the rows in one order."""
    out: list[list[tuple[int, E]]] = []
    seen: dict[str, int] = {}
    for position, event in enumerate(events):
        k = seen.get(event.data.child_id, 0)
        seen[event.data.child_id] = k + 1
        if k == len(out):
            out.append([])
        out[k].append((position, event))
    return [sorted(batch, key=lambda pair: pair[1].data.child_id) for batch in out]


async def _publish_linked_by_trace(
    session: AsyncSession,
    ctx: ServiceContext,
    linked: Sequence[tuple[ReceivedEvent[Any], students.LinkedRow]],
) -> None:
    """StudentLinked for each row, under the trace id of the child event that linked it, as one by one:
    one outbox insert per stretch of one trace id (a feed's events share one). Events without a trace
    id (none come from an outbox; test publishers send them) share one fresh id per stretch, where one
    by one each would get its own."""
    i = 0
    while i < len(linked):
        trace = linked[i][0].envelope.traceid
        j = i
        while j < len(linked) and linked[j][0].envelope.traceid == trace:
            j += 1
        token = set_trace_id(trace)
        try:
            await students.publish_linked(session, ctx, [row for _e, row in linked[i:j]])
        finally:
            reset_trace_id(token)
        i = j


async def close_records(
    session: AsyncSession, ctx: ServiceContext, event: ReceivedEvent[ChildStatusChanged]
) -> None:
    """Close the active records of a child the registry reports deceased (kept, no longer active)."""
    for record in await students.active_for_child_id(session, event.data.child_id):
        await apply_status(
            session=session,
            ctx=ctx,
            principal=None,
            record=record,
            status="deceased",
            on=event.data.effective_date,
            reason="registry_deceased",
        )


def make_handlers(ctx: ServiceContext) -> dict[str, Handler]:
    async def on_child_snapshot(session: AsyncSession, event: ReceivedEvent[ChildSnapshot]) -> None:
        data = event.data
        applied = await repository.upsert_snapshot(
            session, _snapshot_row(event, utcnow()), dialect=ctx.db.dialect
        )
        if applied:
            # Before touching the records: a registration looking this child up right now either
            # committed its records already (the link below sees them) or waits and then sees the child.
            await students.hold_link_lock(session, exclusive=True)
            linked = await students.link_child(
                session,
                child_id=data.child_id,
                id_blind_index=data.id_blind_index,
                hukou_school_district=data.hukou_school_district,
            )
            await students.publish_linked(session, ctx, linked)

    async def on_child_status_changed(
        session: AsyncSession, event: ReceivedEvent[ChildStatusChanged]
    ) -> None:
        data = event.data
        applied = await repository.set_status(
            session,
            child_id=data.child_id,
            status=data.status,
            merged_into=data.merged_into,
            sequence=event.envelope.sequence,
        )
        if applied and reclassifies(data.status, data.previous_status):
            # the campaigns that have run classified the child by its old status: run them again
            await request_refresh(session)
        if applied and data.status == "deceased":
            # The record is kept and closed; it no longer counts as an active 学籍. The link lock is
            # taken before the records' row locks (a registration holding it never waits for ours).
            await students.hold_link_lock(session, exclusive=True)
            await close_records(session, ctx, event)

    return {"snapshot": on_child_snapshot, "status": on_child_status_changed}


def make_batch_handlers(ctx: ServiceContext) -> dict[str, BatchHandler]:
    """The set-based counterparts of :func:`make_handlers` (same keys, same effects, in fewer statements)."""

    async def on_child_snapshots(session: AsyncSession, events: list[ReceivedEvent[ChildSnapshot]]) -> None:
        now = utcnow()
        applied: list[int] = []
        for batch in rounds(events):
            ids = await repository.upsert_snapshots(
                session, [_snapshot_row(e, now) for _p, e in batch], dialect=ctx.db.dialect
            )
            applied += [p for p, e in batch if e.data.child_id in ids]
        if not applied:
            return
        applied.sort()
        # What linking after each applied event in turn comes to: the unlinked records of a blind
        # index go to the first applied child with it, with that event's district (and StudentLinked
        # says so); every record of a child then ends with the district of its last applied event.
        takes: dict[str, tuple[int, str, str | None]] = {}
        last: dict[str, str | None] = {}
        for p in applied:
            data = events[p].data
            last[data.child_id] = data.hukou_school_district
            if data.id_blind_index and data.id_blind_index not in takes:
                takes[data.id_blind_index] = (p, data.child_id, data.hukou_school_district)
        # As one by one: the lock is taken once a snapshot is applied, before the records are touched.
        await students.hold_link_lock(session, exclusive=True)
        linked = await students.link_children(
            session, [(b, c, d) for b, (_p, c, d) in takes.items()], list(last.items())
        )
        linked.sort(key=lambda pair: takes[pair[0]][0])  # in the order of the events that linked them
        await _publish_linked_by_trace(
            session, ctx, [(events[takes[blind][0]], row) for blind, row in linked]
        )

    async def on_child_statuses(
        session: AsyncSession, events: list[ReceivedEvent[ChildStatusChanged]]
    ) -> None:
        applied: list[int] = []
        for batch in rounds(events):
            ids = await repository.set_statuses(
                session,
                [
                    (e.data.child_id, e.data.status, e.data.merged_into, e.envelope.sequence)
                    for _p, e in batch
                ],
                dialect=ctx.db.dialect,
            )
            applied += [p for p, e in batch if e.data.child_id in ids]
        if any(reclassifies(events[p].data.status, events[p].data.previous_status) for p in applied):
            await request_refresh(session)  # once for the run, as one by one would flag the same campaigns
        deceased = [events[p] for p in sorted(applied) if events[p].data.status == "deceased"]
        if not deceased:
            return
        await students.hold_link_lock(session, exclusive=True)
        for event in deceased:  # rare: each closed record is a domain transition with its own event
            token = set_trace_id(event.envelope.traceid)
            try:
                await close_records(session, ctx, event)
            finally:
                reset_trace_id(token)

    return {"snapshot": on_child_snapshots, "status": on_child_statuses}
