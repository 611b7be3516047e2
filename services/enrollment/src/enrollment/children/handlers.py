"""Handlers of the registry's child events: keep the read model and the student records' links current."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.registry import ChildSnapshot, ChildStatusChanged
from baoxue.db import utcnow
from baoxue.events.consumer import ReceivedEvent
from baoxue.service import ServiceContext
from enrollment.children import repository
from enrollment.students import repository as students
from enrollment.students.transitions import apply_status

Handler = Callable[[AsyncSession, ReceivedEvent[Any]], Awaitable[None]]


def make_handlers(ctx: ServiceContext) -> dict[str, Handler]:
    async def on_child_snapshot(session: AsyncSession, event: ReceivedEvent[ChildSnapshot]) -> None:
        data = event.data
        applied = await repository.upsert_snapshot(
            session,
            {
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
                "updated_at": utcnow(),
            },
            dialect=ctx.db.dialect,
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
        if applied and data.status == "deceased":
            # The record is kept and closed; it no longer counts as an active 学籍. The link lock is
            # taken before the records' row locks (a registration holding it never waits for ours).
            await students.hold_link_lock(session, exclusive=True)
            for record in await students.active_for_child_id(session, data.child_id):
                await apply_status(
                    session=session,
                    ctx=ctx,
                    principal=None,
                    record=record,
                    status="deceased",
                    on=data.effective_date,
                    reason="registry_deceased",
                )

    return {"snapshot": on_child_snapshot, "status": on_child_status_changed}
