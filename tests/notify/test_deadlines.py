"""Deadlines opened and closed by events, statutory deadlines, reminders before and lapses after."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import insert, select

from baoxue.contracts.casework import (
    CaseClosed,
    CaseConfirmed,
    CaseRelapsed,
    CaseReopened,
    CaseReported,
    CaseReturned,
    CensusCompleted,
)
from baoxue.contracts.enrollment import ChildUnaccounted, VerificationTaskResolved
from baoxue.contracts.registry import FeedCompleted
from baoxue.events.envelope import Envelope
from baoxue.testing.plugin import eventually
from notify.deadlines.models import Deadline
from notify.deadlines.service import sweep
from notify.escalation.models import EscalationStep
from tests.notify.conftest import (
    BUREAU,
    DISTRICT_A,
    POLICE,
    SCHOOL_A,
    SCHOOL_B,
    TOWN_A,
    TOWN_B,
    at_ten,
    case_ladders,
    school_card,
    start_notify,
)


async def _deadlines(svc, **where) -> list[Deadline]:
    async with svc.ctx.db.transaction() as s:
        statement = select(Deadline)
        for key, value in where.items():
            statement = statement.where(getattr(Deadline, key) == value)
        return list((await s.execute(statement.order_by(Deadline.due_date))).scalars())


async def _sweep(svc, today):
    async with svc.ctx.db.transaction() as s:
        return await sweep(session=s, ctx=svc.ctx, today=today)


async def test_event_deadlines_are_reminded_met_or_lapsed(start_service, event_publisher, tokens):
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False, reminder_workdays=2)
    task_late, task_ok = str(uuid.uuid4()), str(uuid.uuid4())
    for task in (task_late, task_ok):
        await event_publisher.publish(
            ChildUnaccounted(
                task_id=task,
                campaign_id="c1",
                child_id=str(uuid.uuid4()),
                hukou_town=TOWN_A,
                hukou_school_district=DISTRICT_A,
                due_date=dt.date(2026, 10, 9),
            ),
            subject=task,
        )
    case_a, case_b = str(uuid.uuid4()), str(uuid.uuid4())
    for case, school in ((case_a, SCHOOL_A), (case_b, SCHOOL_B)):
        await event_publisher.publish(
            CaseConfirmed(
                case_id=case,
                school_code=school,
                hukou_town=school[:9],
                state="confirmed",
                report_due=dt.date(2026, 10, 12),
            ),
            subject=case,
        )

    async def opened() -> bool:
        return (
            len(await _deadlines(svc, kind="verification_task")) == 2
            and len(await _deadlines(svc, kind="case_report")) == 2
        )

    await eventually(opened)
    await event_publisher.publish(
        VerificationTaskResolved(
            task_id=task_ok,
            campaign_id="c1",
            child_id="x",
            outcome="enrolled_elsewhere",
            hukou_school_district=DISTRICT_A,
            resolved_on=dt.date(2026, 10, 8),
            on_time=True,
        ),
        subject=task_ok,
        sequence=2,
    )
    await event_publisher.publish(
        CaseReported(
            case_id=case_a,
            school_code=SCHOOL_A,
            hukou_town=TOWN_A,
            state="persuading",
            reported_on=dt.date(2026, 10, 13),
            on_time=False,
        ),
        subject=case_a,
        sequence=2,
    )

    async def closed() -> bool:
        return [d.status for d in await _deadlines(svc, kind="case_report", org=SCHOOL_A)] == ["met"] and [
            d.status for d in await _deadlines(svc, subject_id=task_ok)
        ] == ["met"]

    await eventually(closed)
    [late_report] = await _deadlines(svc, kind="case_report", org=SCHOOL_A)
    assert late_report.on_time is False  # reported a day late: met, but not on time

    # On 29 Sep three working days are left (30 Sep, 8 and 9 Oct): no reminder. On 30 Sep, ten calendar
    # days before the due date, only two are left (1–7 Oct off): remind.
    first = await _sweep(svc, dt.date(2026, 9, 29))
    assert [d.reminded_on for d in await _deadlines(svc, subject_id=task_late)] == [None]
    await _sweep(svc, dt.date(2026, 9, 30))
    assert [d.reminded_on for d in await _deadlines(svc, subject_id=task_late)] == [dt.date(2026, 9, 30)]
    district_inbox = (
        await svc.client.get(
            "/v1/inbox", params={"kind": "reminder"}, headers=tokens.headers("school_district", DISTRICT_A)
        )
    ).json()["items"]
    assert [m["ref_id"] for m in district_inbox] == [(await _deadlines(svc, subject_id=task_late))[0].id]

    result = await _sweep(svc, dt.date(2026, 10, 13))
    assert result.lapsed >= 2 and first.opened > 0
    assert [d.status for d in await _deadlines(svc, subject_id=task_late)] == ["lapsed"]
    assert [d.status for d in await _deadlines(svc, kind="case_report", org=SCHOOL_B)] == ["lapsed"]
    # The town hears of its school's lapse; the school is asked to act.
    town_b = (
        await svc.client.get("/v1/inbox", params={"kind": "lapse"}, headers=tokens.headers("town", TOWN_B))
    ).json()
    digests = [m["body"] for m in town_b["items"] if m["ref_type"] == "sweep"]
    assert digests == ["辍学报告 1 项"]
    listed = (
        await svc.client.get(
            "/v1/deadlines",
            params={"status": "lapsed", "org": SCHOOL_B, "kind": "case_report"},
            headers=tokens.headers("school", SCHOOL_B),
        )
    ).json()["items"]
    assert [d["kind"] for d in listed] == ["case_report"]
    foreign = (
        await svc.client.get(
            "/v1/deadlines", params={"org": SCHOOL_A}, headers=tokens.headers("school", SCHOOL_B)
        )
    ).json()["items"]
    assert foreign == []


async def test_statutory_deadlines_open_per_owner_and_close_from_feeds_and_census(
    start_service, event_publisher
):
    svc = await start_notify(start_service)
    result = await _sweep(svc, dt.date(2026, 3, 2))
    feeds = await _deadlines(svc, kind="feed", subject_id="2026-03")
    assert sorted(d.org for d in feeds) == ["370406D02", "370406D03", "370406D04", "370406D05"]
    assert {d.due_date for d in feeds} == {dt.date(2026, 3, 31)}
    census = await _deadlines(svc, kind="census", subject_id="2026-spring", org=SCHOOL_A)
    assert [d.due_date for d in census] == [dt.date(2026, 3, 15)]
    assert result.opened == len(await _deadlines(svc))
    again = await _sweep(svc, dt.date(2026, 3, 3))
    assert again.opened == 0

    await event_publisher.publish(
        FeedCompleted(
            batch_id="b1", department="dept_police", period="2026-03", rows_total=10, accepted=10, rejected=0
        ),
        subject="b1",
    )
    await event_publisher.publish(
        CensusCompleted(
            census_id="k1",
            school_code=SCHOOL_A,
            semester="2026-spring",
            completed_on=dt.date(2026, 3, 12),
            on_time=True,
            counts_by_category={"disabled": 3},
        ),
        subject="k1",
    )

    async def met() -> bool:
        police = await _deadlines(svc, kind="feed", org=POLICE, subject_id="2026-03")
        school = await _deadlines(svc, kind="census", org=SCHOOL_A, subject_id="2026-spring")
        return police[0].status == "met" and school[0].status == "met"

    await eventually(met)
    result = await _sweep(svc, dt.date(2026, 4, 1))
    assert [d.status for d in await _deadlines(svc, kind="feed", org="370406D03", subject_id="2026-03")] == [
        "lapsed"
    ]
    assert result.lapsed >= 3
    assert (await _deadlines(svc, kind="census", org=SCHOOL_A))[0].on_time is True


async def test_past_statutory_deadlines_are_not_opened_after_the_fact(start_service):
    svc = await start_notify(start_service)
    result = await _sweep(svc, dt.date(2026, 10, 20))
    assert result.lapsed == 0
    assert {(d.kind, d.subject_id) for d in await _deadlines(svc)} == {
        ("dropout_report", "2026-10"),
        ("bulletin", "2026-11"),
    }


async def test_a_case_reopened_by_a_relapse_owes_a_new_report_and_has_not_returned(
    start_service, event_publisher, tokens
):
    """Each confirmation opens its own report deadline (a relapse confirmed again is a new episode), a
    report meets the latest one, and the return before the relapse no longer counts as a return."""
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    case_id = str(uuid.uuid4())
    base = dict(case_id=case_id, school_code=SCHOOL_A, hukou_town=TOWN_A, reason="learning_weariness")

    story = [
        (CaseConfirmed(**base, state="confirmed", report_due=dt.date(2026, 3, 10)), dt.date(2026, 3, 2)),
        (
            CaseReported(**base, state="confirmed", reported_on=dt.date(2026, 3, 5), on_time=True),
            dt.date(2026, 3, 5),
        ),
        (CaseReturned(**base, state="returned", returned_on=dt.date(2026, 4, 1)), dt.date(2026, 4, 1)),
        (CaseClosed(**base, state="closed", closure_reason="returned"), dt.date(2026, 5, 6)),
        (CaseReopened(**base, state="suspected", signal="absence"), dt.date(2026, 10, 9)),
        (CaseConfirmed(**base, state="confirmed", report_due=dt.date(2026, 10, 20)), dt.date(2026, 10, 12)),
    ]
    for sequence, (event, day) in enumerate(story, start=2):
        await event_publisher.publish(event, subject=case_id, sequence=sequence, time=at_ten(day))

    async def reports() -> list[tuple[str, dt.date, str]]:
        return [(d.subject_id, d.due_date, d.status) for d in await _deadlines(svc, case_id=case_id)]

    async def second_opened() -> bool:
        return len(await reports()) == 2

    await eventually(second_opened)
    assert await reports() == [
        (f"{case_id}:2026-03-02", dt.date(2026, 3, 10), "met"),
        (f"{case_id}:2026-10-12", dt.date(2026, 10, 20), "open"),
    ]
    bureau = tokens.headers("bureau", BUREAU)

    # Relapsed and out of school again: a dropout that has not returned.
    figures = await school_card(svc, bureau, SCHOOL_A)
    assert (figures["dropouts"], figures["returned"], figures["return_rate"]) == (1, 0, 0.0)
    # The second report is never filed: the sweep lapses it; the school's timeliness is 1 of 2.
    result = await _sweep(svc, dt.date(2026, 11, 2))
    assert result.lapsed >= 1
    assert [status for *_, status in await reports()] == ["met", "lapsed"]
    figures = await school_card(svc, bureau, SCHOOL_A)
    assert (figures["reports_due"], figures["report_timeliness"]) == (2, 0.5)

    # With two report deadlines open, a report meets the latest confirmation's, never an earlier one's.
    again = str(uuid.uuid4())
    second = dict(base, case_id=again)
    for sequence, (event, day) in enumerate(
        [
            (
                CaseConfirmed(**second, state="confirmed", report_due=dt.date(2026, 3, 10)),
                dt.date(2026, 3, 2),
            ),
            (CaseClosed(**second, state="closed", closure_reason="returned"), dt.date(2026, 3, 3)),
            (CaseReopened(**second, state="suspected", signal="absence"), dt.date(2026, 3, 4)),
            (
                CaseConfirmed(**second, state="confirmed", report_due=dt.date(2026, 3, 18)),
                dt.date(2026, 3, 6),
            ),
            (
                CaseReported(**second, state="confirmed", reported_on=dt.date(2026, 3, 9), on_time=True),
                dt.date(2026, 3, 9),
            ),
        ],
        start=2,
    ):
        await event_publisher.publish(event, subject=again, sequence=sequence, time=at_ten(day))

    async def reported() -> bool:
        return any(d.status == "met" for d in await _deadlines(svc, case_id=again))

    await eventually(reported)
    assert [(d.due_date, d.status) for d in await _deadlines(svc, case_id=again)] == [
        (dt.date(2026, 3, 10), "open"),
        (dt.date(2026, 3, 18), "met"),
    ]


async def test_a_confirmation_replayed_after_the_upgrade_finds_its_report_deadline_under_the_old_subject(
    start_service, event_publisher
):
    """A report deadline opened before there was one per confirmation has the case id alone as its
    subject. The case's first confirmation, dead-lettered and replayed after the upgrade, opens no second
    deadline for the same report; a later confirmation (a relapse) still opens its own."""
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    case_id = str(uuid.uuid4())
    base = dict(case_id=case_id, school_code=SCHOOL_A, hukou_town=TOWN_A, reason="learning_weariness")
    confirmed_on, first_due = dt.date(2026, 3, 2), dt.date(2026, 3, 10)
    async with svc.ctx.db.transaction() as s:
        s.add(
            Deadline(
                id=str(uuid.uuid4()),
                kind="case_report",
                org=SCHOOL_A,
                subject_id=case_id,  # the subject before one per confirmation
                case_id=case_id,
                due_date=first_due,
                status="met",
                closed_on=dt.date(2026, 3, 5),
                on_time=True,
            )
        )
    # The first confirmation's event, dead-lettered by the version before (not in the inbox).
    envelope = Envelope.wrap(
        CaseConfirmed(**base, state="confirmed", report_due=first_due),
        subject=case_id,
        sequence=2,
        trace_id=None,
    )
    envelope.time = at_ten(confirmed_on)
    table = svc.spec.tables.events.dead_letter
    async with svc.ctx.db.transaction() as s:
        dead_letter_id = (
            await s.execute(
                insert(table)
                .values(
                    consumer=svc.ctx.consumers.consumer,
                    event_id=envelope.id,
                    event_type=envelope.type,
                    deliveries=8,
                    error_type="KeyError",
                    error_code="delivery_limit",
                    envelope=envelope.model_dump_json(),
                    created_at=dt.datetime.now(dt.UTC),
                )
                .returning(table.c.id)
            )
        ).scalar_one()

    assert await svc.ctx.consumers.replay_dead_letter(dead_letter_id) == "applied"
    reports = [(d.subject_id, d.due_date, d.status) for d in await _deadlines(svc, case_id=case_id)]
    assert reports == [(case_id, first_due, "met")], "the replay opened a second deadline for one report"

    # Reopened by a relapse and confirmed again: a new report is owed, under the new subject.
    await event_publisher.publish(
        CaseConfirmed(**base, state="confirmed", report_due=dt.date(2026, 10, 20)),
        subject=case_id,
        sequence=9,
        time=at_ten(dt.date(2026, 10, 12)),
    )

    async def second_opened() -> bool:
        return len(await _deadlines(svc, case_id=case_id)) == 2

    await eventually(second_opened)
    assert [(d.subject_id, d.status) for d in await _deadlines(svc, case_id=case_id)] == [
        (case_id, "met"),
        (f"{case_id}:2026-10-12", "open"),
    ]


async def test_a_return_dated_before_the_latest_reopening_counts_for_the_episode_it_ends(
    start_service, event_publisher, tokens
):
    """The relapse is recorded on 9 Oct (CaseReopened) and confirmed; the child has been back since
    8 Oct and the school records the return on 20 Oct, dated 8 Oct. That return ends the current
    episode: it stops the episode's ladder and the scorecard counts the child returned, although its
    date is older than the reopening. The first episode's return did not count once the case reopened."""
    svc = await start_notify(start_service)
    case_id = str(uuid.uuid4())
    base = dict(case_id=case_id, school_code=SCHOOL_A, hukou_town=TOWN_A, reason="learning_weariness")

    story = [
        (CaseConfirmed(**base, state="confirmed", report_due=dt.date(2026, 3, 10)), dt.date(2026, 3, 2)),
        (CaseReturned(**base, state="returned", returned_on=dt.date(2026, 4, 1)), dt.date(2026, 4, 1)),
        (CaseClosed(**base, state="closed", closure_reason="returned"), dt.date(2026, 5, 6)),
        (CaseReopened(**base, state="suspected", signal="absence"), dt.date(2026, 10, 9)),
        (CaseConfirmed(**base, state="confirmed", report_due=dt.date(2026, 10, 20)), dt.date(2026, 10, 9)),
    ]
    for sequence, (event, day) in enumerate(story, start=2):
        await event_publisher.publish(event, subject=case_id, sequence=sequence, time=at_ten(day))

    async def second_ladder_started() -> bool:
        return [e.state for e in await case_ladders(svc, case_id)] == ["resolved", "active"]

    await eventually(second_ladder_started)
    bureau = tokens.headers("bureau", BUREAU)

    assert (
        (await school_card(svc, bureau, SCHOOL_A))["dropouts"],
        (await school_card(svc, bureau, SCHOOL_A))["returned"],
    ) == (1, 0)

    await event_publisher.publish(
        CaseReturned(**base, state="returned", returned_on=dt.date(2026, 10, 8)),
        subject=case_id,
        sequence=7,
        time=at_ten(dt.date(2026, 10, 20)),
    )

    async def second_ladder_stopped() -> bool:
        return [(e.state, e.resolution) for e in await case_ladders(svc, case_id)] == [
            ("resolved", "returned"),
            ("resolved", "returned"),
        ]

    await eventually(second_ladder_stopped)
    second = (await case_ladders(svc, case_id))[1]
    assert [d.status for d in await _deadlines(svc, subject_id=f"{second.id}:L1_school")] == ["cancelled"]
    figures = await school_card(svc, bureau, SCHOOL_A)
    assert (figures["dropouts"], figures["returned"], figures["return_rate"]) == (1, 1, 1.0)


async def test_a_returned_child_who_stops_attending_again_has_not_returned_and_gets_a_new_ladder(
    start_service, event_publisher, tokens
):
    """Confirmed, returned, and then the child stops attending again before the case is closed
    (CaseRelapsed, returned → persuading): the scorecard no longer counts the child as returned and a new
    episode's ladder starts at L1 (the first was resolved by the return). The relapse delivered again
    starts no third ladder; a return recorded after the relapse counts again and stops the new ladder
    (before, the child stayed counted as returned and no ladder followed the relapse)."""
    svc = await start_notify(start_service)
    case_id = str(uuid.uuid4())
    base = dict(case_id=case_id, school_code=SCHOOL_A, hukou_town=TOWN_A, reason="learning_weariness")

    story = [
        (CaseConfirmed(**base, state="confirmed", report_due=dt.date(2026, 3, 10)), dt.date(2026, 3, 2)),
        (CaseReturned(**base, state="returned", returned_on=dt.date(2026, 4, 1)), dt.date(2026, 4, 1)),
    ]
    for sequence, (event, day) in enumerate(story, start=2):
        await event_publisher.publish(event, subject=case_id, sequence=sequence, time=at_ten(day))
    bureau = tokens.headers("bureau", BUREAU)

    async def returned_once() -> bool:
        return (await school_card(svc, bureau, SCHOOL_A)).get("returned") == 1 and [
            e.state for e in await case_ladders(svc, case_id)
        ] == ["resolved"]

    await eventually(returned_once)

    relapse = CaseRelapsed(**base, state="persuading", relapsed_on=dt.date(2026, 4, 20))
    for _ in range(2):  # the second delivery under another event id, as a replay would be
        await event_publisher.publish(relapse, subject=case_id, sequence=4, time=at_ten(dt.date(2026, 4, 20)))

    async def relapsed() -> bool:
        return (await school_card(svc, bureau, SCHOOL_A)).get("returned") == 0 and len(
            await case_ladders(svc, case_id)
        ) == 2

    await eventually(relapsed)
    figures = await school_card(svc, bureau, SCHOOL_A)
    assert (figures["dropouts"], figures["returned"], figures["return_rate"]) == (1, 0, 0.0)
    first, second = await case_ladders(svc, case_id)
    assert (first.state, first.resolution) == ("resolved", "returned")
    assert (second.state, second.level, second.level_entered_on) == (
        "active",
        "L1_school",
        dt.date(2026, 4, 20),
    )
    assert [d.status for d in await _deadlines(svc, subject_id=f"{second.id}:L1_school")] == ["open"]
    async with svc.ctx.db.transaction() as s:
        [entered] = (
            await s.execute(
                select(EscalationStep).where(
                    EscalationStep.escalation_id == second.id, EscalationStep.kind == "entered"
                )
            )
        ).scalars()
    assert entered.trigger == "relapsed"

    # Back at school again, recorded after the relapse: counted as returned, the new ladder stopped.
    await event_publisher.publish(
        CaseReturned(**base, state="returned", returned_on=dt.date(2026, 5, 6)),
        subject=case_id,
        sequence=5,
        time=at_ten(dt.date(2026, 5, 6)),
    )

    async def back() -> bool:
        return (await school_card(svc, bureau, SCHOOL_A)).get("returned") == 1 and (
            await case_ladders(svc, case_id)
        )[-1].state == "resolved"

    await eventually(back)
    assert [(e.state, e.resolution) for e in await case_ladders(svc, case_id)] == [
        ("resolved", "returned")
    ] * 2
