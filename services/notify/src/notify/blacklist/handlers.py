"""A case whose reason is illegal schooling flags the listed providers of the child's town."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts import casework as cw
from baoxue.events.consumer import ReceivedEvent
from baoxue.service import ServiceContext
from notify.blacklist import service
from notify.deadlines.handlers import Handler


def make_handlers(ctx: ServiceContext) -> dict[str, dict[type, Handler]]:
    async def on_case(session: AsyncSession, event: ReceivedEvent[cw.CaseEvent]) -> None:
        if event.data.reason == "illegal_schooling":
            await service.on_illegal_schooling_case(
                session=session, ctx=ctx, case_id=event.data.case_id, town=event.data.hukou_town
            )

    return {"casework": {cw.CaseOpened: on_case, cw.CaseConfirmed: on_case}}
