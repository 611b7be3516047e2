"""The escalation ladder climbs L1→L4 as deadlines lapse, and stops when the child returns."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.contracts.casework import (
    CaseClosed,
    CaseConfirmed,
    CasePlaced,
    CaseRelapsed,
    CaseReopened,
    CaseReported,
    CaseReturned,
    EscalationRequested,
    EscalationWithdrawn,
)
from baoxue.events.envelope import Envelope
from baoxue.testing.plugin import eventually
from notify.deadlines.models import Deadline
from notify.deadlines.service import sweep
from notify.documents.models import Document
from notify.escalation import service as escalation
from notify.escalation.models import Escalation
from notify.escalation.service import CaseRef
from tests.notify.conftest import (
    BUREAU,
    JUSTICE,
    SCHOOL_A,
    TOWN_A,
    TOWN_B,
    at_ten,
    case_ladders,
    start_notify,
)


def _case(**over):
    base = dict(
        case_id=str(uuid.uuid4()),
        child_id=str(uuid.uuid4()),
        school_code=SCHOOL_A,
        hukou_town=TOWN_A,
        state="confirmed",
        reason="guardian_refusal",
    )
    return base | over


async def _escalation(svc, case_id: str) -> Escalation | None:
    async with svc.ctx.db.transaction() as s:
        return (await s.execute(select(Escalation).where(Escalation.case_id == case_id))).scalar_one_or_none()


def _episodes(case: dict) -> dict[str, tuple[int, object, dt.date]]:
    """A case confirmed, returned and closed, reopened by a relapse and confirmed again: each event with
    its sequence in the case's order and its date."""
    return {
        "confirmed": (2, CaseConfirmed(**case, report_due=dt.date(2026, 3, 10)), dt.date(2026, 3, 2)),
        "returned": (
            3,
            CaseReturned(**case | {"state": "returned"}, returned_on=dt.date(2026, 4, 1)),
            dt.date(2026, 4, 1),
        ),
        "closed": (
            4,
            CaseClosed(**case | {"state": "closed"}, closure_reason="returned"),
            dt.date(2026, 5, 6),
        ),
        "reopened": (
            5,
            CaseReopened(**case | {"state": "suspected"}, signal="absence"),
            dt.date(2026, 10, 9),
        ),
        "confirmed_again": (
            6,
            CaseConfirmed(**case, report_due=dt.date(2026, 10, 20)),
            dt.date(2026, 10, 12),
        ),
    }


def _escalation_story(case: dict) -> dict[str, tuple[int, object, dt.date]]:
    """A case confirmed (L1), escalation requested by the school (L2), then returned: each event with its
    sequence in the case's order and its date."""
    return {
        "confirmed": (2, CaseConfirmed(**case, report_due=dt.date(2026, 3, 10)), dt.date(2026, 3, 2)),
        "requested": (
            4,
            EscalationRequested(**case | {"state": "escalated"}, evidence_count=1),
            dt.date(2026, 3, 20),
        ),
        "returned": (
            5,
            CaseReturned(**case | {"state": "returned"}, returned_on=dt.date(2026, 4, 1)),
            dt.date(2026, 4, 1),
        ),
    }


async def _sweep(svc, today: dt.date):
    async with svc.ctx.db.transaction() as s:
        return await sweep(session=s, ctx=svc.ctx, today=today)


async def _outbox_types(svc) -> list[str]:
    table = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        return [
            r.event_type for r in (await s.execute(select(table.c.event_type).order_by(table.c.created_at)))
        ]


async def test_ladder_climbs_to_legal_action_and_stops_when_the_child_returns(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service)
    case = _case()
    await event_publisher.publish(
        CaseConfirmed(**case, report_due=dt.date(2026, 12, 4)), subject=case["case_id"]
    )

    async def started() -> bool:
        return await _escalation(svc, case["case_id"]) is not None

    await eventually(started)
    esc = await _escalation(svc, case["case_id"])
    assert esc.level == "L1_school" and esc.state == "active"
    levels = [esc.level]
    for _ in range(3):
        day_after = esc.level_deadline + dt.timedelta(days=1)
        result = await _sweep(svc, day_after)
        assert result.advanced == 1
        esc = await _escalation(svc, case["case_id"])
        assert esc.level_entered_on == day_after
        levels.append(esc.level)
    assert levels == ["L1_school", "L2_town_order", "L3_judicial", "L4_legal_action"]

    async with svc.ctx.db.transaction() as s:
        docs = list(
            (
                await s.execute(
                    select(Document).where(Document.case_id == case["case_id"]).order_by(Document.created_at)
                )
            ).scalars()
        )
    assert [(d.kind, d.issuing_org, d.recipient_org) for d in docs] == [
        ("parent_letter", SCHOOL_A, None),
        ("correction_order", TOWN_A, None),
        ("judicial_referral", TOWN_A, JUSTICE),
    ]
    assert json.loads(docs[2].fields)["order_number"] == docs[1].number

    justice = tokens.headers("justice", JUSTICE)
    inbox = (await svc.client.get("/v1/inbox", headers=justice)).json()["items"]
    assert {m["kind"] for m in inbox} >= {"notice", "escalation"}
    detail = (await svc.client.get(f"/v1/escalations/{esc.id}", headers=justice)).json()
    assert [s["level"] for s in detail["steps"] if s["kind"] == "entered"] == levels
    assert detail["acting_org"] == JUSTICE

    # The last level does not climb further; the lapse is still reported.
    result = await _sweep(svc, esc.level_deadline + dt.timedelta(days=1))
    assert result.advanced == 0 and result.lapsed >= 1
    assert (await _escalation(svc, case["case_id"])).level == "L4_legal_action"

    # A return resolves it (at L4, which would not climb anyway: that a return stops the climb is
    # test_a_return_or_a_placement_below_the_top_stops_the_climb).
    await event_publisher.publish(
        CaseReturned(**case | {"state": "returned"}, returned_on=dt.date(2027, 3, 1)),
        subject=case["case_id"],
        sequence=9,
    )

    async def resolved() -> bool:
        e = await _escalation(svc, case["case_id"])
        return e.state == "resolved"

    await eventually(resolved)
    esc = await _escalation(svc, case["case_id"])
    assert esc.resolution == "returned"
    types = await _outbox_types(svc)
    assert types.count("baoxue.notify.escalation.advanced.v1") == 3
    assert "baoxue.notify.escalation.raised.v1" in types and "baoxue.notify.escalation.resolved.v1" in types
    assert "baoxue.notify.deadline.lapsed.v1" in types


async def test_a_return_or_a_placement_below_the_top_stops_the_climb(start_service, event_publisher):
    """Stopped at L2 (a return, a placement), the ladder does not climb when the L2 deadline passes, nor
    later: the test above stops it at L4, which would not climb anyway."""
    svc = await start_notify(start_service)
    returned, placed = _case(), _case()
    for case in (returned, placed):
        await event_publisher.publish(
            CaseConfirmed(**case, report_due=dt.date(2026, 12, 4)), subject=case["case_id"], sequence=2
        )

    async def started() -> bool:
        return all([await _escalation(svc, c["case_id"]) for c in (returned, placed)])

    await eventually(started)
    l1 = await _escalation(svc, returned["case_id"])
    assert (await _sweep(svc, l1.level_deadline + dt.timedelta(days=1))).advanced == 2
    at_l2 = {c["case_id"]: await _escalation(svc, c["case_id"]) for c in (returned, placed)}
    assert {e.level for e in at_l2.values()} == {"L2_town_order"}

    await event_publisher.publish(
        CaseReturned(**returned | {"state": "returned"}, returned_on=dt.date(2026, 12, 1)),
        subject=returned["case_id"],
        sequence=3,
    )
    await event_publisher.publish(
        CasePlaced(**placed | {"state": "placed"}, placement_mode="special_school"),
        subject=placed["case_id"],
        sequence=3,
    )

    async def resolved() -> bool:
        return all([(await _escalation(svc, c)).state == "resolved" for c in at_l2])

    await eventually(resolved)
    l2_deadline = max(e.level_deadline for e in at_l2.values())
    for day in (l2_deadline + dt.timedelta(days=1), l2_deadline + dt.timedelta(days=90)):
        assert (await _sweep(svc, day)).advanced == 0
    for case_id, before in at_l2.items():
        after = await _escalation(svc, case_id)
        assert (after.state, after.level, after.version) == ("resolved", "L2_town_order", before.version + 1)
    assert {(await _escalation(svc, c)).resolution for c in at_l2} == {"returned", "placed"}
    assert (await _outbox_types(svc)).count("baoxue.notify.escalation.advanced.v1") == 2


async def test_escalation_requested_starts_at_the_town_order_and_placement_stops_it(
    start_service, event_publisher, tokens
):
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    case = _case(state="escalated")
    await event_publisher.publish(EscalationRequested(**case, evidence_count=3), subject=case["case_id"])

    async def started() -> bool:
        return await _escalation(svc, case["case_id"]) is not None

    await eventually(started)
    esc = await _escalation(svc, case["case_id"])
    assert esc.level == "L2_town_order"

    # The town advances by hand; a school may not.
    school = await svc.client.post(
        f"/v1/escalations/{esc.id}/advance",
        json={"note": "监护人拒绝"},
        headers=tokens.headers("school", SCHOOL_A),
    )
    assert school.status_code == 403
    other_town = await svc.client.post(
        f"/v1/escalations/{esc.id}/advance",
        json={"note": "监护人拒绝"},
        headers=tokens.headers("town", "370406101"),
    )
    assert other_town.status_code == 404
    town = await svc.client.post(
        f"/v1/escalations/{esc.id}/advance",
        json={"note": "监护人明确拒绝送学"},
        headers=tokens.headers("town", TOWN_A),
    )
    assert town.status_code == 200, town.text
    assert town.json()["level"] == "L3_judicial"

    await event_publisher.publish(
        CasePlaced(**case | {"state": "placed"}, placement_mode="home_delivery"),
        subject=case["case_id"],
        sequence=5,
    )

    async def resolved() -> bool:
        return (await _escalation(svc, case["case_id"])).state == "resolved"

    await eventually(resolved)
    assert (await _escalation(svc, case["case_id"])).resolution == "placed"
    listed = await svc.client.get(
        "/v1/escalations", params={"state": "resolved"}, headers=tokens.headers("bureau", BUREAU)
    )
    assert [e["case_id"] for e in listed.json()["items"]] == [case["case_id"]]


async def test_a_return_stops_the_ladder_but_not_the_schools_report_deadline(
    start_service, event_publisher, tokens
):
    """Resolving the ladder cancels its own levels' deadlines only: the school still owes the case's
    report, and a report on time after the return counts as on time (not criticised)."""
    svc = await start_notify(start_service)
    case = _case()
    await event_publisher.publish(
        CaseConfirmed(**case, report_due=dt.date(2026, 12, 10)), subject=case["case_id"], sequence=2
    )
    await event_publisher.publish(
        CaseReturned(**case | {"state": "returned"}, returned_on=dt.date(2026, 12, 1)),
        subject=case["case_id"],
        sequence=3,
    )
    await event_publisher.publish(
        CaseReported(**case | {"state": "returned"}, reported_on=dt.date(2026, 12, 2), on_time=True),
        subject=case["case_id"],
        sequence=4,
    )

    async def deadlines() -> dict[str, tuple[str, bool | None]]:
        async with svc.ctx.db.transaction() as s:
            rows = (await s.execute(select(Deadline).where(Deadline.case_id == case["case_id"]))).scalars()
            return {d.kind: (d.status, d.on_time) for d in rows}

    async def settled() -> bool:
        return (await deadlines()).get("case_report", ("open",))[0] != "open"

    await eventually(settled)
    assert await deadlines() == {
        "case_report": ("met", True),
        "escalation_L1_school": ("cancelled", None),
    }
    assert (await _escalation(svc, case["case_id"])).resolution == "returned"
    bureau = tokens.headers("bureau", BUREAU)
    cards = (
        await svc.client.get("/v1/scorecards", params={"year": 2026, "level": "school"}, headers=bureau)
    ).json()
    [card] = [c for c in cards if c["org"] == SCHOOL_A]
    assert (card["reports_due"], card["report_timeliness"], card["lapsed"]) == (1, 1.0, 0)
    criticised = (
        await svc.client.get(
            "/v1/scorecards/criticism", params={"year": 2026, "level": "school"}, headers=bureau
        )
    ).json()
    assert SCHOOL_A not in {c["org"] for c in criticised}


async def test_only_the_acting_town_acts_on_its_level_not_the_schools_town(
    start_service, event_publisher, tokens
):
    """A pupil of a school in town A whose hukou is in town B: town B orders the parents (L2). Town A sees
    the ladder (its school's case) but may not record actions, advance it or withdraw it (403)."""
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    case = _case(state="escalated", hukou_town=TOWN_B)
    await event_publisher.publish(EscalationRequested(**case, evidence_count=3), subject=case["case_id"])

    async def started() -> bool:
        return await _escalation(svc, case["case_id"]) is not None

    await eventually(started)
    esc = await _escalation(svc, case["case_id"])
    town_a, town_b = tokens.headers("town", TOWN_A), tokens.headers("town", TOWN_B)
    seen = await svc.client.get(f"/v1/escalations/{esc.id}", headers=town_a)
    assert seen.status_code == 200 and seen.json()["acting_org"] == TOWN_B
    for path, body in (
        ("actions", {"note": "镇街约谈家长"}),
        ("advance", {"note": "监护人拒绝"}),
        ("withdrawal", {"note": "撤回督办"}),
    ):
        refused = await svc.client.post(f"/v1/escalations/{esc.id}/{path}", json=body, headers=town_a)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["code"] == "not_the_acting_organisation"
    after = await _escalation(svc, case["case_id"])
    assert (after.state, after.level, after.version) == ("active", "L2_town_order", esc.version)
    acted = await svc.client.post(
        f"/v1/escalations/{esc.id}/actions", json={"note": "镇街约谈家长"}, headers=town_b
    )
    assert acted.status_code == 201, acted.text
    withdrawn = await svc.client.post(
        f"/v1/escalations/{esc.id}/withdrawal", json={"note": "家长已送学"}, headers=town_b
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["resolution"] == "withdrawn"


async def test_the_school_withdrawing_its_escalation_stops_the_ladder(start_service, event_publisher, tokens):
    """Escalated → persuading at the school: the ladder is resolved as withdrawn, its open deadlines
    cancelled, and a lapse after its deadline climbs no further (before, it went on to the judicial and
    legal-action levels)."""
    svc = await start_notify(start_service, ladder_starts_at_confirmation=False)
    case = _case(state="escalated")
    await event_publisher.publish(EscalationRequested(**case, evidence_count=1), subject=case["case_id"])

    async def started() -> bool:
        return await _escalation(svc, case["case_id"]) is not None

    await eventually(started)
    esc = await _escalation(svc, case["case_id"])
    assert (esc.level, esc.state) == ("L2_town_order", "active")
    await event_publisher.publish(
        EscalationWithdrawn(**case | {"state": "persuading"}), subject=case["case_id"], sequence=4
    )

    async def resolved() -> bool:
        return (await _escalation(svc, case["case_id"])).state == "resolved"

    await eventually(resolved)
    esc = await _escalation(svc, case["case_id"])
    assert (esc.resolution, esc.level) == ("withdrawn", "L2_town_order")
    async with svc.ctx.db.transaction() as s:  # cancelled by the withdrawal, before any sweep could lapse it
        rows = (await s.execute(select(Deadline).where(Deadline.case_id == case["case_id"]))).scalars()
        assert {d.kind: d.status for d in rows} == {"escalation_L2_town_order": "cancelled"}
    result = await _sweep(svc, esc.level_deadline + dt.timedelta(days=1))
    assert result.advanced == 0
    assert (await _escalation(svc, case["case_id"])).level == "L2_town_order"
    bureau = tokens.headers("bureau", BUREAU)
    deadlines = (await svc.client.get("/v1/deadlines", params={"status": "open"}, headers=bureau)).json()
    assert [d for d in deadlines["items"] if d.get("case_id") == case["case_id"]] == []
    types = await _outbox_types(svc)
    assert "baoxue.notify.escalation.advanced.v1" not in types
    assert types.count("baoxue.notify.escalation.resolved.v1") == 1


async def test_a_late_end_of_an_earlier_episode_leaves_the_current_ladder_alone(
    start_service, event_publisher
):
    """Confirmed, returned and closed, reopened by a relapse and confirmed again: the second confirmation
    starts the new episode's ladder. The first episode's return (or its return and closure) arriving
    after the reopening, late or replayed, belongs to the earlier episode: it stops nothing, and the new
    ladder keeps its L1 deadline. When the first ladder is still active at the second confirmation (its
    end has not arrived), that ladder is resolved as closed and the new one starts (before, the return
    resolved the new episode's ladder, or the old ladder went on and was then stopped, leaving the
    relapsed child without one)."""
    svc = await start_notify(start_service)
    late_return, both_late = _case(), _case()
    orders = {
        late_return["case_id"]: ["confirmed", "closed", "reopened", "confirmed_again", "returned"],
        both_late["case_id"]: ["confirmed", "reopened", "confirmed_again", "returned", "closed"],
    }
    published: list[Envelope] = []
    for case in (late_return, both_late):
        story = _episodes(case)
        for name in orders[case["case_id"]]:
            sequence, event, day = story[name]
            published.append(
                await event_publisher.publish(
                    event, subject=case["case_id"], sequence=sequence, time=at_ten(day)
                )
            )
    await eventually(lambda: svc.handled(*(e.id for e in published)))

    for case in (late_return, both_late):
        ladders = await case_ladders(svc, case["case_id"])
        assert [(e.state, e.resolution, e.level) for e in ladders] == [
            ("resolved", "closed", "L1_school"),
            ("active", None, "L1_school"),
        ]
        first, second = ladders
        assert (first.episode_sequence, second.episode_sequence) == (2, 6)
        assert second.level_entered_on == dt.date(2026, 10, 12)
        async with svc.ctx.db.transaction() as s:
            rows = await s.execute(select(Deadline).where(Deadline.subject_id == f"{second.id}:L1_school"))
            assert [d.status for d in rows.scalars()] == ["open"]
    # The new ladder climbs when its deadline lapses: the late events did not stop it.
    second = (await case_ladders(svc, late_return["case_id"]))[1]
    assert (await _sweep(svc, second.level_deadline + dt.timedelta(days=1))).advanced == 2


async def test_a_confirmation_or_request_delivered_again_starts_no_second_ladder(
    start_service, event_publisher
):
    """The same confirmation (or escalation request) delivered again under another event id, which the
    inbox cannot recognise, after its ladder was resolved starts nothing: one ladder per confirmation.
    A new confirmation after the case was closed and reopened still starts the new episode's ladder, and
    that one's confirmation delivered again starts nothing either (before, each delivery started a new
    ladder for a child who had returned)."""
    svc = await start_notify(start_service)
    case, requested = _case(), _case()
    story = _episodes(case)
    published: list[Envelope] = []

    async def deliver(name: str, of: dict | None = None) -> None:
        sequence, event, day = (of or story)[name]
        published.append(
            await event_publisher.publish(event, subject=event.case_id, sequence=sequence, time=at_ten(day))
        )

    for name in ("confirmed", "returned", "confirmed"):
        await deliver(name)
    # The other case: confirmed (L1), escalation requested (L2), returned; the request delivered again.
    escalation = _escalation_story(requested)
    for name in ("confirmed", "requested", "returned", "requested"):
        await deliver(name, escalation)
    await eventually(lambda: svc.handled(*(e.id for e in published)))
    assert [(e.state, e.resolution) for e in await case_ladders(svc, case["case_id"])] == [
        ("resolved", "returned")
    ]
    [lifted] = await case_ladders(svc, requested["case_id"])
    assert (lifted.state, lifted.resolution, lifted.level) == ("resolved", "returned", "L2_town_order")

    # Closed, reopened by a relapse, confirmed again: a new episode, a new ladder; then returned, and the
    # new confirmation delivered again.
    for name in ("closed", "reopened", "confirmed_again"):
        await deliver(name)
    await eventually(lambda: svc.handled(*(e.id for e in published)))
    assert [e.state for e in await case_ladders(svc, case["case_id"])] == ["resolved", "active"]
    returned_again = CaseReturned(**case | {"state": "returned"}, returned_on=dt.date(2026, 11, 2))
    published.append(
        await event_publisher.publish(
            returned_again, subject=case["case_id"], sequence=7, time=at_ten(dt.date(2026, 11, 2))
        )
    )
    await deliver("confirmed_again")
    await eventually(lambda: svc.handled(*(e.id for e in published)))
    ladders = await case_ladders(svc, case["case_id"])
    assert [(e.state, e.resolution, e.episode_sequence) for e in ladders] == [
        ("resolved", "returned", 2),
        ("resolved", "returned", 6),
    ]
    raised = (await _outbox_types(svc)).count("baoxue.notify.escalation.raised.v1")
    assert raised == 3


async def _ladder_events(svc, case_id: str) -> list[tuple[str, str, str, int | None]]:
    """The escalation events of the case in notify's outbox, oldest first: (event, escalation id, level,
    episode)."""
    table = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        rows = (await s.execute(select(table.c.envelope).order_by(table.c.position))).scalars()
        envelopes = [json.loads(r) for r in rows]
    return [
        (e["type"].split(".")[-2], e["data"]["escalation_id"], e["data"]["level"], e["data"].get("episode"))
        for e in envelopes
        if e["type"].startswith("baoxue.notify.escalation.") and e["data"]["case_id"] == case_id
    ]


async def test_the_ladder_events_carry_the_episode_of_the_ladder(start_service, event_publisher):
    """Every EscalationRaised / EscalationAdvanced / EscalationResolved carries its ladder's episode (the
    sequence of the case event it serves), so that casework can tell a late event of an earlier episode's
    ladder from one of the ladder its case follows. A request lifting the ladder makes it serve the
    request: the climb and the end that follow carry the request's sequence. A ladder of an earlier
    episode resolved by the next episode's confirmation carries its own episode, the new ladder the new
    one's."""
    svc = await start_notify(start_service)
    lifted, reopened = _case(), _case()
    published: list[Envelope] = []
    requested = _escalation_story(lifted)
    story = _episodes(reopened)
    for events, names in (
        (requested, ("confirmed", "requested", "returned")),
        (story, ("confirmed", "reopened", "confirmed_again")),
    ):
        for name in names:
            sequence, event, day = events[name]
            published.append(
                await event_publisher.publish(
                    event, subject=event.case_id, sequence=sequence, time=at_ten(day)
                )
            )
    await eventually(lambda: svc.handled(*(e.id for e in published)))

    [ladder] = await case_ladders(svc, lifted["case_id"])
    assert await _ladder_events(svc, lifted["case_id"]) == [
        ("raised", ladder.id, "L1_school", 2),
        ("advanced", ladder.id, "L2_town_order", 4),
        ("resolved", ladder.id, "L2_town_order", 4),
    ]
    first, second = await case_ladders(svc, reopened["case_id"])
    assert await _ladder_events(svc, reopened["case_id"]) == [
        ("raised", first.id, "L1_school", 2),
        ("resolved", first.id, "L1_school", 2),
        ("raised", second.id, "L1_school", 6),
    ]
    # The climb by lapse carries the episode too.
    assert (await _sweep(svc, second.level_deadline + dt.timedelta(days=1))).advanced == 1
    assert (await _ladder_events(svc, reopened["case_id"]))[-1] == ("advanced", second.id, "L2_town_order", 6)


async def test_an_end_that_arrives_before_the_ladder_keeps_its_late_confirmation_from_starting_one(
    start_service, event_publisher
):
    """The end of an episode delivered before the case event that began it (the confirmation
    dead-lettered, then replayed after the return or the closure; a request delivered late) is kept even
    though it finds no ladder to stop: the confirmation or request arriving after it starts no ladder and
    raises nothing. The next episode still gets its own: a relapse after the return, a confirmation
    after the closure and reopening (before, the late confirmation started a ladder for a returned or
    closed case, and the late request one at L2)."""
    svc = await start_notify(start_service)
    returned, closed, requested = _case(), _case(), _case()
    published: list[Envelope] = []

    async def deliver(case: dict, name: str, story: dict | None = None) -> None:
        sequence, event, day = (story or _episodes(case))[name]
        published.append(
            await event_publisher.publish(event, subject=case["case_id"], sequence=sequence, time=at_ten(day))
        )

    relapse = {
        "relapsed": (
            4,
            CaseRelapsed(**returned | {"state": "persuading"}, relapsed_on=dt.date(2026, 4, 20)),
            dt.date(2026, 4, 20),
        )
    }
    late_request = _escalation_story(requested)
    await deliver(returned, "returned")
    await deliver(returned, "confirmed")
    await deliver(closed, "closed")
    await deliver(closed, "confirmed")
    await deliver(requested, "confirmed")
    await deliver(requested, "returned", late_request)
    await deliver(requested, "requested", late_request)
    await eventually(lambda: svc.handled(*(e.id for e in published)))
    assert await case_ladders(svc, returned["case_id"]) == []
    assert await case_ladders(svc, closed["case_id"]) == []
    assert await _ladder_events(svc, returned["case_id"]) == []
    assert await _ladder_events(svc, closed["case_id"]) == []
    [first] = await case_ladders(svc, requested["case_id"])
    assert (first.state, first.resolution, first.level, first.episode_sequence) == (
        "resolved",
        "returned",
        "L1_school",
        2,
    )
    assert [e[0] for e in await _ladder_events(svc, requested["case_id"])] == ["raised", "resolved"]

    # The next episodes: the returned child relapses; the closed case is reopened and confirmed again.
    await deliver(returned, "relapsed", relapse)
    for name in ("reopened", "confirmed_again"):
        await deliver(closed, name)
    await eventually(lambda: svc.handled(*(e.id for e in published)))
    for case, episode, trigger_day in (
        (returned, 4, dt.date(2026, 4, 20)),
        (closed, 6, dt.date(2026, 10, 12)),
    ):
        [ladder] = await case_ladders(svc, case["case_id"])
        assert (ladder.state, ladder.level, ladder.episode_sequence, ladder.level_entered_on) == (
            "active",
            "L1_school",
            episode,
            trigger_day,
        )
        assert await _ladder_events(svc, case["case_id"]) == [("raised", ladder.id, "L1_school", episode)]


@pytest.mark.parametrize("second", ["confirmed_again", "requested", "returned"])
async def test_two_replicas_applying_events_of_one_case_at_the_same_moment_run_one_ladder(
    start_service, second
):
    """Two notify replicas apply two events of one case at the same moment (two transactions on the
    database): the confirmation's ladder is being started by one when the other applies the same
    confirmation delivered again, the escalation request, or the return. The other waits for the first
    to commit and then sees its ladder: one ladder, which the request lifts to L2 or the return resolves
    (before, each passed the "already served" check: two ladders, or the return found none to stop and
    the returned child's ladder stayed active)."""
    svc = await start_notify(start_service)
    if svc.ctx.db.dialect != "postgresql":
        pytest.skip(
            "SQLite has one writer for the whole database: the consumer takes its write lock with the "
            "inbox claim, so two transactions never apply a case's events at the same time"
        )
    ctx, day = svc.ctx, dt.date(2026, 3, 2)
    ref = CaseRef(
        case_id=str(uuid.uuid4()),
        child_id=str(uuid.uuid4()),
        school_code=SCHOOL_A,
        hukou_town=TOWN_A,
        reason="guardian_refusal",
    )

    async def confirm(s: AsyncSession, episode: int = 2) -> object:
        return await escalation.start_episode(
            session=s,
            ctx=ctx,
            case=ref,
            episode=episode,
            on=day,
            trigger="confirmed",
            earlier_ended_as="closed",
        )

    seconds: dict[str, Callable[[AsyncSession], Awaitable[object]]] = {
        "confirmed_again": confirm,
        "requested": lambda s: escalation.escalate(session=s, ctx=ctx, case=ref, episode=4, on=day),
        "returned": lambda s: escalation.resolve(
            session=s, ctx=ctx, case_id=ref.case_id, resolution="returned", on=day, episode=3
        ),
    }
    first_applied, release = asyncio.Event(), asyncio.Event()

    async def first_replica() -> None:
        async with ctx.db.transaction() as s:
            await confirm(s)
            first_applied.set()
            await release.wait()

    async def second_replica() -> None:
        await first_applied.wait()
        async with ctx.db.transaction() as s:
            await seconds[second](s)

    one = asyncio.create_task(first_replica())
    await first_applied.wait()
    two = asyncio.create_task(second_replica())
    await svc.until_done_or_waiting(two)
    release.set()
    await asyncio.gather(one, two)

    [ladder] = await case_ladders(svc, ref.case_id)
    expected = {
        "confirmed_again": (("active", None, "L1_school", 2), ["raised"]),
        "requested": (("active", None, "L2_town_order", 4), ["raised", "advanced"]),
        "returned": (("resolved", "returned", "L1_school", 2), ["raised", "resolved"]),
    }[second]
    assert (ladder.state, ladder.resolution, ladder.level, ladder.episode_sequence) == expected[0]
    assert [e[0] for e in await _ladder_events(svc, ref.case_id)] == expected[1]


async def test_the_database_refuses_a_second_active_ladder_for_a_case(start_service):
    """One active ladder per case is the database's rule too (migration 0018: a partial unique index on
    escalations(case_id) where the state is active), not only the service's (its lock on the case and
    start_episode resolving the ladder it overtakes): a second active ladder written past them, such as
    by a replica still running code from before the lock, is refused with an IntegrityError and leaves
    the case's ladder alone. A resolved ladder of the case is accepted, and so is another case's."""
    svc = await start_notify(start_service)
    ctx, day = svc.ctx, dt.date(2026, 3, 2)
    ref = CaseRef(
        case_id=str(uuid.uuid4()),
        child_id=str(uuid.uuid4()),
        school_code=SCHOOL_A,
        hukou_town=TOWN_A,
        reason="guardian_refusal",
    )
    async with ctx.db.transaction() as s:
        await escalation.start_episode(
            session=s, ctx=ctx, case=ref, episode=2, on=day, trigger="confirmed", earlier_ended_as="closed"
        )

    def ladder(case_id: str, state: str) -> Escalation:
        return Escalation(
            id=str(uuid.uuid4()),
            case_id=case_id,
            level="L1_school",
            state=state,
            resolution=None if state == "active" else "withdrawn",
            level_entered_on=day,
            level_deadline=day,
            episode_sequence=3,
        )

    with pytest.raises(IntegrityError):
        async with ctx.db.transaction() as s:
            s.add(ladder(ref.case_id, "active"))
    other = str(uuid.uuid4())
    async with ctx.db.transaction() as s:
        s.add(ladder(ref.case_id, "resolved"))
        s.add(ladder(other, "active"))
    assert [(e.state, e.episode_sequence) for e in await case_ladders(svc, ref.case_id)] == [
        ("active", 2),
        ("resolved", 3),
    ]
    assert [e.state for e in await case_ladders(svc, other)] == ["active"]
