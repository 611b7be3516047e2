"""The district bulletin equals enrollment's frozen result; scorecards and the criticism list."""

from __future__ import annotations

import datetime as dt
import io
import uuid

from openpyxl import load_workbook

from baoxue.contracts.casework import CaseConfirmed, CaseReported, CaseReturned, VisitRecorded
from baoxue.contracts.enrollment import CampaignCompleted
from baoxue.testing.plugin import eventually
from notify.deadlines.service import sweep
from tests.notify.conftest import BUREAU, SCHOOL_A, SCHOOL_B, TOWN_A, TOWN_B, start_notify

RESULT = CampaignCompleted(
    campaign_id=str(uuid.uuid4()),
    kind="november_comparison",
    year=2026,
    as_of=dt.date(2026, 11, 25),
    result_version=2,
    children_in_scope=58231,
    counts_by_outcome={
        "enrolled_local": 55012,
        "enrolled_elsewhere": 2871,
        "deferred": 41,
        "placed": 162,
        "not_in_school": 17,
        "moved_out": 128,
    },
    counts_by_town={
        TOWN_A: {"enrolled_local": 30001, "enrolled_elsewhere": 1500, "not_in_school": 9},
        TOWN_B: {"enrolled_local": 25011, "enrolled_elsewhere": 1371, "not_in_school": 8},
    },
    tasks_total=340,
    tasks_open=0,
)


async def test_bulletin_figures_equal_the_frozen_campaign_result(start_service, event_publisher, tokens):
    svc = await start_notify(start_service)
    bureau = tokens.headers("bureau", BUREAU)
    await event_publisher.publish(RESULT, subject=RESULT.campaign_id, sequence=2)

    async def arrived() -> bool:
        return bool((await svc.client.get("/v1/bulletins", headers=bureau)).json()["items"])

    await eventually(arrived)
    bulletin = (await svc.client.get("/v1/bulletins", headers=bureau)).json()["items"][0]
    expected = RESULT.model_dump(mode="json")
    for field in (
        "campaign_id",
        "kind",
        "year",
        "as_of",
        "result_version",
        "children_in_scope",
        "counts_by_outcome",
        "counts_by_town",
        "tasks_total",
        "tasks_open",
    ):
        assert bulletin[field] == expected[field], field

    xlsx = await svc.client.get(f"/v1/bulletins/{bulletin['id']}/xlsx", headers=bureau)
    book = load_workbook(io.BytesIO(xlsx.content))
    summary = {row[0]: row[2] for row in book["汇总"].iter_rows(min_row=8, values_only=True)}
    assert summary == RESULT.counts_by_outcome
    assert book["汇总"]["B3"].value == RESULT.children_in_scope
    towns = list(book["分镇街"].iter_rows(min_row=2, values_only=True))
    assert {row[0]: row[-1] for row in towns} == {
        t: sum(c.values()) for t, c in RESULT.counts_by_town.items()
    }
    assert towns[0][1] == "山城街道"

    pdf = await svc.client.get(f"/v1/bulletins/{bulletin['id']}/pdf", headers=bureau)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and b"/Image" in pdf.content

    published = await svc.client.post(f"/v1/bulletins/{bulletin['id']}/publication", headers=bureau)
    assert published.status_code == 200 and published.json()["published_at"]
    again = await svc.client.post(f"/v1/bulletins/{bulletin['id']}/publication", headers=bureau)
    assert again.status_code == 409 and again.json()["code"] == "bulletin_published"
    town_inbox = (await svc.client.get("/v1/inbox", headers=tokens.headers("town", TOWN_A))).json()["items"]
    assert [m["ref_id"] for m in town_inbox if m["kind"] == "bulletin"] == [bulletin["id"]]

    # The same result delivered again (a new event: not caught by the inbox) or an older version changes
    # nothing; counted once notify has handled both.
    again = await event_publisher.publish(RESULT, subject=RESULT.campaign_id, sequence=2)
    older = RESULT.model_copy(update={"result_version": 1, "children_in_scope": 1})
    old = await event_publisher.publish(older, subject=RESULT.campaign_id, sequence=1)
    await eventually(lambda: svc.handled(again.id, old.id))
    items = (await svc.client.get("/v1/bulletins", headers=bureau)).json()["items"]
    assert [(b["result_version"], b["children_in_scope"]) for b in items] == [(2, RESULT.children_in_scope)]


async def test_scorecards_and_the_criticism_list_follow_the_events(start_service, event_publisher, tokens):
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    cases = []
    for school, on_time in ((SCHOOL_A, True), (SCHOOL_A, True), (SCHOOL_B, False)):
        case = dict(
            case_id=str(uuid.uuid4()),
            school_code=school,
            hukou_town=school[:9],
            state="confirmed",
            reason="learning_weariness",
        )
        cases.append(case)
        await event_publisher.publish(
            CaseConfirmed(**case, report_due=dt.date(2026, 12, 4)), subject=case["case_id"]
        )
        if on_time:
            await event_publisher.publish(
                CaseReported(
                    **case | {"state": "persuading"}, reported_on=dt.date(2026, 12, 1), on_time=True
                ),
                subject=case["case_id"],
                sequence=2,
            )
    await event_publisher.publish(
        CaseReturned(**cases[0] | {"state": "returned"}, returned_on=dt.date(2026, 12, 10)),
        subject=cases[0]["case_id"],
        sequence=3,
    )
    await event_publisher.publish(
        VisitRecorded(
            visit_id=str(uuid.uuid4()),
            student_id=str(uuid.uuid4()),
            school_code=SCHOOL_A,
            teacher="t-17",
            semester="2026-autumn",
            visited_on=dt.date(2026, 11, 2),
        ),
        subject="v1",
    )
    bureau = tokens.headers("bureau", BUREAU)

    async def settled() -> bool:
        rows = (
            await svc.client.get("/v1/scorecards", params={"year": 2026, "level": "school"}, headers=bureau)
        ).json()
        by_org = {r["org"]: r for r in rows}
        return (
            by_org.get(SCHOOL_A, {}).get("returned") == 1
            and by_org.get(SCHOOL_A, {}).get("visits") == 1
            and by_org.get(SCHOOL_B, {}).get("dropouts") == 1
        )

    await eventually(settled)
    async with svc.ctx.db.transaction() as s:
        await sweep(session=s, ctx=svc.ctx, today=dt.date(2026, 12, 7))
    rows = (
        await svc.client.get("/v1/scorecards", params={"year": 2026, "level": "school"}, headers=bureau)
    ).json()
    by_org = {r["org"]: r for r in rows}
    a, b = by_org[SCHOOL_A], by_org[SCHOOL_B]
    assert (a["dropouts"], a["returned"], a["return_rate"], a["report_timeliness"]) == (2, 1, 0.5, 1.0)
    assert (b["dropouts"], b["returned"], b["report_timeliness"]) == (1, 0, 0.0)
    assert a["students_visited"] == 1
    towns = {
        r["org"]: r
        for r in (await svc.client.get("/v1/scorecards", params={"year": 2026}, headers=bureau)).json()
    }
    assert towns[TOWN_A]["dropouts"] == 2 and towns[TOWN_B]["dropouts"] == 1

    criticised = (
        await svc.client.get(
            "/v1/scorecards/criticism", params={"year": 2026, "level": "school"}, headers=bureau
        )
    ).json()
    by_org = {c["org"]: c for c in criticised}
    assert SCHOOL_B in by_org and "report_timeliness:0.0" in by_org[SCHOOL_B]["reasons"]
    assert by_org[SCHOOL_B]["name_zh"]

    # A town sees the schools of its own town only (schools do not read scorecards).
    async def school_cards(headers: dict[str, str]) -> set[str]:
        cards = await svc.client.get(
            "/v1/scorecards", params={"year": 2026, "level": "school"}, headers=headers
        )
        assert cards.status_code == 200, cards.text
        return {r["org"] for r in cards.json()}

    assert await school_cards(bureau) >= {SCHOOL_A, SCHOOL_B}
    assert await school_cards(tokens.headers("town", TOWN_B)) == {SCHOOL_B}
    assert await school_cards(tokens.headers("town", TOWN_A)) == {SCHOOL_A}
    xlsx = await svc.client.get("/v1/scorecards/xlsx", params={"year": 2026}, headers=bureau)
    assert xlsx.status_code == 200 and load_workbook(io.BytesIO(xlsx.content)).active.max_row >= 3
