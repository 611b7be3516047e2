"""Referrals sent by events: the police's hukou clean-up results, confirmed cases whose reason the
notice assigns to another department, and expired deferrals/exemptions (the hukou school district
confirms the child is back)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts import casework as cw
from baoxue.contracts import enrollment as en
from baoxue.contracts import registry as rg
from baoxue.events.consumer import ReceivedEvent
from baoxue.service import ServiceContext
from notify.deadlines.handlers import Handler
from notify.referrals import service

CLEAN_UP_STATUSES = frozenset({"deceased", "moved_out", "duplicate", "missing"})


def make_handlers(ctx: ServiceContext) -> dict[str, dict[type, Handler]]:
    police = ctx.directory.by_role("dept_police").code

    async def on_status_changed(session: AsyncSession, event: ReceivedEvent[rg.ChildStatusChanged]) -> None:
        d = event.data
        if d.status not in CLEAN_UP_STATUSES:
            return
        details = f"status={d.status} previous={d.previous_status} effective={d.effective_date.isoformat()}"
        if d.merged_into:
            details += f" merged_into={d.merged_into}"
        await service.send(
            session=session,
            ctx=ctx,
            kind="hukou_cleanup",
            subject_id=f"{d.child_id}:{d.status}",
            from_org=police,
            child_id=d.child_id,
            details=details,
        )

    async def on_case_confirmed(session: AsyncSession, event: ReceivedEvent[cw.CaseConfirmed]) -> None:
        d = event.data
        for kind in service.referral_kinds_for_case(d.reason):
            await service.send(
                session=session,
                ctx=ctx,
                kind=kind,
                subject_id=d.case_id,
                from_org=d.school_code or d.hukou_town or police,
                case_id=d.case_id,
                child_id=d.child_id,
                details=f"reason={d.reason}",
            )

    async def on_deferral_expired(session: AsyncSession, event: ReceivedEvent[en.DeferralExpired]) -> None:
        d = event.data
        await service.deferral_expired(
            session=session,
            ctx=ctx,
            deferral_id=d.deferral_id,
            kind=d.kind,
            child_id=d.child_id,
            hukou_school_district=d.hukou_school_district,
            ended_on=d.ended_on,
        )

    return {
        "registry": {rg.ChildStatusChanged: on_status_changed},
        "casework": {cw.CaseConfirmed: on_case_confirmed},
        "enrollment": {en.DeferralExpired: on_deferral_expired},
    }
