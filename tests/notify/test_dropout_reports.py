"""The end-of-March / end-of-October dropout reports: per town and school from the case events, as
Excel and PDF, closing the bureau's statutory deadline."""

from __future__ import annotations

import datetime as dt
import io
import uuid

from openpyxl import load_workbook
from sqlalchemy import select

from baoxue.contracts import casework as cw
from baoxue.testing.plugin import eventually
from baoxue.workdays import today_in_china
from notify.bulletins.models import CaseFact
from notify.deadlines.models import Deadline
from notify.deadlines.service import sweep
from notify.reports.service import window
from tests.notify.conftest import BUREAU, SCHOOL_A, SCHOOL_B, TOWN_A, TOWN_B, start_notify


def _current_period(today: dt.date) -> str:
    if 4 <= today.month <= 10:
        return f"{today.year}-10"
    return f"{today.year + 1 if today.month >= 11 else today.year}-03"


def _base(case_id: str, school: str | None, town: str, state: str) -> dict:
    return {
        "case_id": case_id,
        "school_code": school,
        "hukou_town": town,
        "state": state,
        "reason": "working",
    }


async def _publish_cases(event_publisher) -> None:
    today = today_in_china()
    c1, c2, c3, c4, c5, c6 = (str(uuid.uuid4()) for _ in range(6))
    due = today + dt.timedelta(days=14)
    story = [
        (c1, cw.CaseOpened(**_base(c1, SCHOOL_A, TOWN_A, "suspected"), signal="absence")),
        (c1, cw.CaseConfirmed(**_base(c1, SCHOOL_A, TOWN_A, "confirmed"), report_due=due)),
        (c1, cw.CaseReturned(**_base(c1, SCHOOL_A, TOWN_A, "returned"), returned_on=today)),
        (c1, cw.CaseClosed(**_base(c1, SCHOOL_A, TOWN_A, "closed"), closure_reason="attending")),
        (c1, cw.CaseReopened(**_base(c1, SCHOOL_A, TOWN_A, "suspected"), signal="absence")),
        (c2, cw.CaseOpened(**_base(c2, SCHOOL_A, TOWN_A, "suspected"), signal="absence")),
        (c2, cw.CaseConfirmed(**_base(c2, SCHOOL_A, TOWN_A, "confirmed"), report_due=due)),
        (c2, cw.EscalationRequested(**_base(c2, SCHOOL_A, TOWN_A, "escalated"), evidence_count=2)),
        (c3, cw.CaseOpened(**_base(c3, SCHOOL_B, TOWN_B, "suspected"), signal="absence")),
        (c4, cw.CaseOpened(**_base(c4, None, TOWN_B, "suspected"), signal="hukou_unenrolled")),
        (c4, cw.CaseConfirmed(**_base(c4, None, TOWN_B, "confirmed"), report_due=due)),
        # c6 returned and stopped attending again before closure: the open case's relapse is a reopening.
        (c6, cw.CaseOpened(**_base(c6, SCHOOL_B, TOWN_B, "suspected"), signal="absence")),
        (c6, cw.CaseConfirmed(**_base(c6, SCHOOL_B, TOWN_B, "confirmed"), report_due=due)),
        (c6, cw.CaseReturned(**_base(c6, SCHOOL_B, TOWN_B, "returned"), returned_on=today)),
        (c6, cw.CaseRelapsed(**_base(c6, SCHOOL_B, TOWN_B, "persuading"), relapsed_on=today)),
    ]
    sequences: dict[str, int] = {}
    for case_id, event in story:
        sequences[case_id] = sequences.get(case_id, 0) + 1
        await event_publisher.publish(event, subject=case_id, sequence=sequences[case_id])
    # Out of order: c5's confirmation (sequence 2) arrives before its opening (sequence 1); the opening
    # date still counts, and the older state does not overwrite the newer one.
    await event_publisher.publish(
        cw.CaseConfirmed(**_base(c5, SCHOOL_B, TOWN_B, "confirmed"), report_due=due), subject=c5, sequence=2
    )
    await event_publisher.publish(
        cw.CaseOpened(**_base(c5, SCHOOL_B, TOWN_B, "suspected"), signal="absence"), subject=c5, sequence=1
    )


async def test_the_dropout_report_counts_per_town_and_school_and_exports(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service, simulation=True, ladder_starts_at_confirmation=False)
    period = _current_period(today_in_china())
    start, end = window(period)
    assert start <= today_in_china() <= end
    # The statutory calendar opens the bureau's deadline for the period (a sweep before its due date).
    async with svc.ctx.db.transaction() as s:
        await sweep(session=s, ctx=svc.ctx, today=end - dt.timedelta(days=3))
    await _publish_cases(event_publisher)

    async def recorded() -> bool:
        async with svc.ctx.db.transaction() as s:
            facts = list((await s.execute(select(CaseFact))).scalars())
        return (
            len(facts) == 6
            and sum(f.confirmed_on is not None for f in facts) == 5
            and sum(f.opened_on is not None for f in facts) == 6
            and sum(f.escalated_on is not None for f in facts) == 1
            and sum(f.returned_on is not None for f in facts) == 2
            and sum(f.reopened_on is not None for f in facts) == 1
            and sum(f.relapsed_on is not None for f in facts) == 1
        )

    await eventually(recorded)
    async with svc.ctx.db.transaction() as s:
        states = {f.state for f in (await s.execute(select(CaseFact))).scalars() if f.school_code == SCHOOL_B}
    assert states == {"suspected", "confirmed", "persuading"}  # c3 suspected; c5 stays confirmed; c6
    bureau = tokens.headers("bureau", BUREAU)
    created = await svc.client.post("/v1/dropout-reports", json={"period": period}, headers=bureau)
    assert created.status_code == 201, created.text
    report = created.json()
    assert report["final"] is True and report["as_of"] == end.isoformat() and report["version"] == 1
    figures = {
        (r["town"], r["school"]): (
            r["suspected"],
            r["confirmed"],
            r["returned"],
            r["escalated"],
            r["reopened"],
        )
        for r in report["rows"]
    }
    assert figures == {
        (TOWN_A, SCHOOL_A): (2, 2, 1, 1, 1),
        (TOWN_B, SCHOOL_B): (3, 2, 1, 0, 1),
        (TOWN_B, None): (1, 1, 0, 0, 0),
    }
    assert report["totals"] == {"suspected": 6, "confirmed": 5, "returned": 2, "escalated": 1, "reopened": 2}
    assert {r["town_name"] for r in report["rows"]} == {"山城街道", "店子镇"}

    async with svc.ctx.db.transaction() as s:
        [deadline] = list(
            (
                await s.execute(
                    select(Deadline).where(Deadline.kind == "dropout_report", Deadline.subject_id == period)
                )
            ).scalars()
        )
    assert deadline.status == "met" and deadline.org == BUREAU and deadline.on_time is True

    xlsx = await svc.client.get(f"/v1/dropout-reports/{report['id']}/xlsx", headers=bureau)
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    towns = [list(r) for r in book["分镇街"].iter_rows(values_only=True)]
    assert towns[0][0].endswith("学生辍学情况报告") and towns[3] == [
        "镇街代码",
        "镇街",
        "疑似辍学",
        "确认辍学",
        "已劝返",
        "提请镇街督办",
        "复学后再次辍学",
    ]
    assert [TOWN_A, "山城街道", 2, 2, 1, 1, 1] in towns and [TOWN_B, "店子镇", 4, 3, 1, 0, 1] in towns
    assert towns[-1] == [None, "合计", 6, 5, 2, 1, 2]
    schools = [list(r) for r in book["分学校"].iter_rows(values_only=True)]
    assert len(schools) == 4 and ["店子镇", None, "（无在籍学校）", 1, 1, 0, 0, 0] in schools
    pdf = await svc.client.get(f"/v1/dropout-reports/{report['id']}/pdf", headers=bureau)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and b"/Image" in pdf.content

    # A town sees its own rows; a school may not read the report; a second generation is version 2.
    town_a = await svc.client.get(
        f"/v1/dropout-reports/{report['id']}", headers=tokens.headers("town", TOWN_A)
    )
    assert [(r["town"], r["school"]) for r in town_a.json()["rows"]] == [(TOWN_A, SCHOOL_A)]
    assert town_a.json()["totals"]["suspected"] == 2 and town_a.json()["totals"]["reopened"] == 1
    school = await svc.client.get("/v1/dropout-reports", headers=tokens.headers("school", SCHOOL_A))
    assert school.status_code == 403
    again = await svc.client.post("/v1/dropout-reports", json={"period": period}, headers=bureau)
    assert again.json()["version"] == 2 and again.json()["totals"] == report["totals"]
    listed = await svc.client.get("/v1/dropout-reports", params={"period": period}, headers=bureau)
    assert sorted(r["version"] for r in listed.json()["items"]) == [1, 2]


async def test_a_report_for_a_period_not_started_is_refused_outside_simulation(start_service, tokens):
    svc = await start_notify(start_service)
    refused = await svc.client.post(
        "/v1/dropout-reports", json={"period": "2099-10"}, headers=tokens.headers("bureau", BUREAU)
    )
    assert refused.status_code == 422 and refused.json()["code"] == "report_period_not_started"
    bad = await svc.client.post(
        "/v1/dropout-reports", json={"period": "2026-05"}, headers=tokens.headers("bureau", BUREAU)
    )
    assert bad.status_code == 422
