"""Event handlers of the bulletins domain: campaign results, case facts, home visits, censuses and rosters."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts import casework as cw
from baoxue.contracts import enrollment as en
from baoxue.events.consumer import ReceivedEvent
from baoxue.service import ServiceContext
from notify.bulletins import repository, service
from notify.deadlines.handlers import Handler, event_date


def make_handlers(ctx: ServiceContext) -> dict[str, dict[type, Handler]]:
    async def on_campaign(session: AsyncSession, event: ReceivedEvent[en.CampaignCompleted]) -> None:
        await service.record_campaign(session=session, ctx=ctx, data=event.data, on=event_date(event))

    def case_fact(**extra: Any) -> Handler:
        async def on_case(session: AsyncSession, event: ReceivedEvent[cw.CaseEvent]) -> None:
            d = event.data
            values = {
                "case_id": d.case_id,
                "school_code": d.school_code,
                "hukou_town": d.hukou_town,
                "reason": d.reason,
                "state": d.state,
            }
            values |= {key: getter(event) for key, getter in extra.items()}
            await repository.upsert_case(session, values, event.envelope.sequence)

        return on_case

    async def on_visit(session: AsyncSession, event: ReceivedEvent[cw.VisitRecorded]) -> None:
        d = event.data
        await repository.insert_visit(
            session,
            {
                "visit_id": d.visit_id,
                "school_code": d.school_code,
                "semester": d.semester,
                "student_key": d.student_id or d.child_id,
                "visited_on": d.visited_on,
                "special_group": d.special_group,
            },
        )

    async def on_census(session: AsyncSession, event: ReceivedEvent[cw.CensusCompleted]) -> None:
        d = event.data
        await repository.upsert_census(
            session,
            {
                "school_code": d.school_code,
                "semester": d.semester,
                "census_id": d.census_id,
                "special_students_at_least": max(d.counts_by_category.values(), default=0),
                "counts_by_category": json.dumps(d.counts_by_category, sort_keys=True),
            },
        )

    async def on_roster(session: AsyncSession, event: ReceivedEvent[cw.RosterSet]) -> None:
        d = event.data
        await repository.upsert_roster(
            session,
            {
                "school_code": d.school_code,
                "semester": d.semester,
                "students": d.students,
                "special_group_students": d.special_group_students,
            },
            event.envelope.sequence,
        )

    return {
        "enrollment": {en.CampaignCompleted: on_campaign},
        "casework": {
            cw.CaseOpened: case_fact(opened_on=event_date),
            cw.CaseConfirmed: case_fact(confirmed_on=event_date),
            cw.EscalationRequested: case_fact(escalated_on=event_date),
            cw.CaseReturned: case_fact(returned_on=lambda e: e.data.returned_on),
            cw.CaseReopened: case_fact(reopened_on=event_date),
            cw.CaseRelapsed: case_fact(relapsed_on=lambda e: e.data.relapsed_on),
            cw.VisitRecorded: on_visit,
            cw.CensusCompleted: on_census,
            cw.RosterSet: on_roster,
        },
    }
