"""Consumers: enrollment's dropout signals and student records, notify's ladder, the registry's exclusions."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import or_, select, text

from baoxue.contracts.casework import (
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseReturned,
    EscalationRequested,
    EscalationWithdrawn,
)
from baoxue.contracts.enrollment import (
    DropoutSuspected,
    StudentLinked,
    StudentRegistered,
    StudentStatusChanged,
)
from baoxue.contracts.notify import EscalationAdvanced, EscalationRaised, EscalationResolved
from baoxue.contracts.registry import ChildStatusChanged
from baoxue.testing.plugin import eventually
from casework.cases.models import Case
from casework.cases.service import Signal, receive_signal
from tests.casework.helpers import (
    ENTRY_FIELDS,
    SCHOOL_A,
    SCHOOL_B,
    TOWN_A,
    TOWN_B,
    attend,
    enrol,
    move,
    new_child,
    open_case,
    outbox_events,
)

DISTRICT_A = "37040600101"


def _today_in_china() -> dt.date:
    """Legal dates are Asia/Shanghai dates (the machine's UTC date differs after 16:00 UTC)."""
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


def _signal(n: int, child_id: str | None, student_id: str | None, kind: str = "absence_four_weeks", **over):
    fields = dict(
        signal_id=f"sig-{child_id}-{n}",
        signal=kind,
        child_id=child_id,
        student_id=student_id,
        school_code=SCHOOL_A,
        hukou_town=TOWN_A,
        hukou_school_district=DISTRICT_A,
        detected_on=dt.date(2026, 11, 2),
    )
    fields.update(over)
    return DropoutSuspected(**fields)


async def _cases(svc, headers) -> list[dict]:
    return (await svc.client.get("/v1/cases", headers=headers)).json()["items"]


async def test_two_signals_for_one_child_give_one_case(start_service, tokens, event_publisher):
    svc = await start_service("casework")
    await svc.wait_events_ready()
    h = tokens.headers("bureau", "370406D01")
    child_id, student_id = new_child()
    await event_publisher.publish(_signal(1, child_id, student_id), subject="sig-1")
    # The second signal knows the child only by its student id; a redelivery of the first is a no-op.
    await event_publisher.publish(
        _signal(2, None, student_id, "verification_not_in_school", school_code=None), subject="sig-2"
    )
    await event_publisher.publish(_signal(1, child_id, student_id), subject="sig-1", event_id="other-id")

    async def attached() -> bool:
        cases = await _cases(svc, h)
        return len(cases) == 1 and cases[0]["signal_count"] == 2

    await eventually(attached)
    [case] = await _cases(svc, h)
    assert case["state"] == "suspected" and case["opened_signal"] == "absence_four_weeks"
    signals = (await svc.client.get(f"/v1/cases/{case['id']}/signals", headers=h)).json()
    assert [s["effect"] for s in signals] == ["opened", "attached"]
    assert len(await outbox_events(svc, CaseOpened)) == 1
    # A district-level signal without a school is seen by the hukou school district.
    other_child, _ = new_child()
    await event_publisher.publish(
        _signal(1, other_child, None, "verification_not_in_school", school_code=None), subject="sig-3"
    )
    district = tokens.headers("school_district", DISTRICT_A)
    await eventually(lambda: _has(svc, district, 2))
    assert len(await _cases(svc, tokens.headers("school", SCHOOL_A))) == 1


async def _has(svc, headers, n: int) -> bool:
    return len(await _cases(svc, headers)) == n


async def test_relapse_inside_the_watch_reopens_the_case(start_service, tokens, event_publisher):
    svc = await start_service("casework", attendance_days_for_closure=1)
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    child_id, student_id = new_child()
    await event_publisher.publish(_signal(1, child_id, student_id), subject="s")
    await eventually(lambda: _has(svc, h, 1))
    [case] = await _cases(svc, h)
    for step in ("confirmed", "persuading", "returned"):
        assert (await move(svc, h, case["id"], step, **ENTRY_FIELDS.get(step, {}))).status_code == 200
    # Enrollment re-registers the student: the read model feeds the closure check.
    registered = StudentRegistered(
        student_id=student_id, child_id=child_id, school_code=SCHOOL_A, status="enrolled"
    )
    await event_publisher.publish(registered, subject=student_id, sequence=3)
    stale = StudentStatusChanged(
        student_id=student_id,
        child_id=child_id,
        school_code=SCHOOL_A,
        status="dropped_out",
        previous_status="enrolled",
    )
    await event_publisher.publish(stale, subject=student_id, sequence=2)  # older: must be ignored
    today = _today_in_china().isoformat()
    r = await svc.client.post(
        f"/v1/cases/{case['id']}/attendance",
        json={"from_date": today, "to_date": today, "days_attended": 1},
        headers=h,
    )
    assert r.status_code == 201, r.text

    async def closes() -> bool:
        return (await move(svc, h, case["id"], "closed", closure_reason="returned")).status_code == 200

    await eventually(closes)
    relapse = _signal(2, child_id, student_id, detected_on=_today_in_china() + dt.timedelta(days=30))
    await event_publisher.publish(relapse, subject="s2")

    async def reopened() -> bool:
        cases = await _cases(svc, h)
        return len(cases) == 1 and cases[0]["state"] == "suspected"

    await eventually(reopened)
    [again] = await _cases(svc, h)
    assert again["id"] == case["id"] and again["reopen_count"] == 1 and again["closed_on"] is None
    assert len(await outbox_events(svc, CaseReopened)) == 1


async def test_signal_after_the_watch_opens_a_new_case(start_service, tokens, event_publisher):
    svc = await start_service("casework", relapse_watch_days=10, attendance_days_for_closure=1)
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    child_id, student_id = new_child()
    await event_publisher.publish(_signal(1, child_id, student_id), subject="s")
    await eventually(lambda: _has(svc, h, 1))
    [case] = await _cases(svc, h)
    registered = StudentRegistered(
        student_id=student_id, child_id=child_id, school_code=SCHOOL_A, status="enrolled"
    )
    await event_publisher.publish(registered, subject=student_id, sequence=1)
    await attend(svc, h, case, since="2026-11-02")  # an unfounded closure needs attendance too

    async def closes() -> bool:
        r = await move(svc, h, case["id"], "closed", closure_reason="unfounded", on="2026-11-03")
        return r.status_code == 200

    await eventually(closes)
    await event_publisher.publish(
        _signal(2, child_id, student_id, detected_on=dt.date(2026, 11, 20)), subject="s"
    )
    await eventually(lambda: _has(svc, h, 2))
    states = sorted(c["state"] for c in await _cases(svc, h))
    assert states == ["closed", "suspected"]


async def test_escalation_request_and_ladder_outcomes(start_service, tokens, event_publisher):
    svc = await start_service("casework")
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    child_id, student_id = new_child()
    await event_publisher.publish(_signal(1, child_id, student_id), subject="s")
    await eventually(lambda: _has(svc, h, 1))
    [case] = await _cases(svc, h)
    await move(svc, h, case["id"], "confirmed", reason="guardian_refusal", responsible_person="李校长")
    await move(svc, h, case["id"], "persuading")
    r = await move(svc, h, case["id"], "escalated")
    assert r.status_code == 422 and r.json()["code"] == "transition_field_required"
    evidence = [
        {"kind": "persuasion_record", "description": "三次家访记录"},
        {"kind": "written_refusal", "description": "家长拒绝书", "file_hash": "a" * 64},
    ]
    assert (await move(svc, h, case["id"], "escalated", evidence=evidence)).status_code == 200
    [requested] = await outbox_events(svc, EscalationRequested)
    assert requested["data"]["evidence_count"] == 2 and requested["data"]["guardian_refusal"] is True

    advanced = EscalationAdvanced(
        escalation_id="esc-1", case_id=case["id"], level="L3_judicial", from_level="L2_town_order"
    )
    await event_publisher.publish(advanced, subject="esc-1", sequence=2)

    async def at_l3() -> bool:
        body = (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()
        return body["escalation_level"] == "L3_judicial"

    await eventually(at_l3)
    resolved = EscalationResolved(
        escalation_id="esc-1", case_id=case["id"], level="L3_judicial", resolution="returned"
    )
    await event_publisher.publish(resolved, subject="esc-1", sequence=3)

    async def returned() -> bool:
        return (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()["state"] == "returned"

    await eventually(returned)
    assert len(await outbox_events(svc, CaseReturned)) == 1


async def test_registry_exclusion_closes_the_open_case(start_service, tokens, event_publisher):
    svc = await start_service("casework")
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    child_id, student_id = new_child()
    await event_publisher.publish(_signal(1, child_id, student_id), subject="s")
    await eventually(lambda: _has(svc, h, 1))
    changed = ChildStatusChanged(
        child_id=child_id, status="moved_out", previous_status="active", effective_date=dt.date(2026, 11, 10)
    )
    await event_publisher.publish(changed, subject=child_id, sequence=4)

    async def closed() -> bool:
        [case] = await _cases(svc, h)
        return case["state"] == "closed" and case["closure_reason"] == "excluded"

    await eventually(closed)
    [event] = await outbox_events(svc, CaseClosed)
    assert event["data"]["closure_reason"] == "excluded"


async def test_ladder_resolved_as_placed_awaits_the_placement_mode(start_service, tokens, event_publisher):
    svc = await start_service("casework")
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    child_id, student_id = new_child()
    await event_publisher.publish(_signal(1, child_id, student_id), subject="s")
    await eventually(lambda: _has(svc, h, 1))
    [case] = await _cases(svc, h)
    await move(svc, h, case["id"], "confirmed", reason="guardian_refusal", responsible_person="李校长")
    await move(svc, h, case["id"], "persuading")
    early = await svc.client.patch(
        f"/v1/cases/{case['id']}",
        json={"placement_mode": "special_school"},
        headers={
            **h,
            "If-Match": (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).headers["ETag"],
        },
    )
    assert early.status_code == 409 and early.json()["code"] == "case_not_placed"
    evidence = [{"kind": "written_refusal", "description": "家长拒绝书"}]
    escalated = await move(svc, h, case["id"], "escalated", evidence=evidence)
    assert escalated.json()["awaiting_placement_mode"] is False
    resolved = EscalationResolved(
        escalation_id="esc-9", case_id=case["id"], level="L2_town_order", resolution="placed"
    )
    await event_publisher.publish(resolved, subject="esc-9", sequence=3)

    async def placed() -> bool:
        return (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()["state"] == "placed"

    await eventually(placed)
    r = await svc.client.get(f"/v1/cases/{case['id']}", headers=h)
    body = r.json()
    assert body["placement_mode"] is None and body["awaiting_placement_mode"] is True
    awaiting = (await svc.client.get("/v1/cases", headers=h)).json()["items"]
    assert [c["awaiting_placement_mode"] for c in awaiting if c["id"] == case["id"]] == [True]
    # Closed as placed only once the placement is recorded.
    early_close = await move(svc, h, case["id"], "closed", closure_reason="placed")
    assert early_close.status_code == 409 and early_close.json()["code"] == "placement_not_recorded"
    r = await svc.client.get(f"/v1/cases/{case['id']}", headers=h)
    assert r.json()["state"] == "placed"
    filled = await svc.client.patch(
        f"/v1/cases/{case['id']}",
        json={"placement_mode": "special_school"},
        headers={**h, "If-Match": r.headers["ETag"]},
    )
    assert filled.status_code == 200, filled.text
    assert filled.json()["placement_mode"] == "special_school"
    assert filled.json()["awaiting_placement_mode"] is False
    closed = await move(svc, h, case["id"], "closed", closure_reason="placed")
    assert closed.status_code == 200, closed.text
    assert (closed.json()["closure_reason"], closed.json()["placement_mode"]) == ("placed", "special_school")
    # A case placed by the school itself names its mode at once and never awaits one.
    other = await open_case(svc, h)
    for step, fields in (
        ("confirmed", {"reason": "illness", "responsible_person": "王老师"}),
        ("persuading", {}),
        ("placed", {"placement_mode": "home_delivery"}),
    ):
        r = await move(svc, h, other["id"], step, **fields)
        assert r.status_code == 200, r.text
    assert r.json()["awaiting_placement_mode"] is False


async def test_the_school_taking_an_escalated_case_back_publishes_the_withdrawal(
    start_service, tokens, event_publisher
):
    """Escalated → persuading by the school publishes EscalationWithdrawn (notify stops its ladder on it);
    the same move made because notify resolved the ladder (withdrawn or closed) publishes nothing more."""
    svc = await start_service("casework")
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    case = await _escalated_case(svc, h)
    evidence = [{"kind": "written_refusal", "description": "家长拒绝书"}]
    r = await move(svc, h, case["id"], "persuading", note="家长同意再谈")
    assert r.status_code == 200 and r.json()["state"] == "persuading"
    [withdrawn] = await outbox_events(svc, EscalationWithdrawn)
    assert withdrawn["data"]["case_id"] == case["id"] and withdrawn["data"]["state"] == "persuading"
    assert withdrawn["sequence"] == r.json()["version"]

    assert (await move(svc, h, case["id"], "escalated", evidence=evidence)).status_code == 200
    resolved = EscalationResolved(
        escalation_id="esc-w", case_id=case["id"], level="L2_town_order", resolution="closed"
    )
    await event_publisher.publish(resolved, subject="esc-w", sequence=3)

    async def back() -> bool:
        return (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()["state"] == "persuading"

    await eventually(back)
    assert len(await outbox_events(svc, EscalationWithdrawn)) == 1


async def test_the_ladder_raised_at_the_town_order_shows_on_the_case(start_service, tokens, event_publisher):
    """EscalationRaised (the ladder's first level) sets the case's escalation like EscalationAdvanced does:
    before, the level stayed null through L2. A repeated or late step of the same ladder does not move
    the level back; a new ladder (another escalation id, after the first was resolved) replaces it."""
    from sqlalchemy import select

    from casework.cases.models import Case

    svc = await start_service("casework")
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    case = await _escalated_case(svc, h)
    evidence = [{"kind": "written_refusal", "description": "家长拒绝书"}]

    async def escalation() -> tuple[str | None, str | None, str | None]:
        """The case's escalation id and level as stored, and the level the case's read answers."""
        async with svc.ctx.db.transaction() as s:
            row = (await s.execute(select(Case).where(Case.id == case["id"]))).scalar_one()
        level = (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()["escalation_level"]
        return row.escalation_id, row.escalation_level, level

    async def at(expected: tuple[str, str]) -> bool:
        return await escalation() == (*expected, expected[1])

    raised = EscalationRaised(escalation_id="esc-1", case_id=case["id"], level="L2_town_order")
    await event_publisher.publish(raised, subject="esc-1", sequence=1)
    await eventually(lambda: at(("esc-1", "L2_town_order")))
    advanced = EscalationAdvanced(
        escalation_id="esc-1", case_id=case["id"], level="L3_judicial", from_level="L2_town_order"
    )
    await event_publisher.publish(advanced, subject="esc-1", sequence=2)
    await eventually(lambda: at(("esc-1", "L3_judicial")))
    # A redelivery of the first step (another event id: not the inbox's duplicate) moves nothing back.
    await event_publisher.publish(raised, subject="esc-1", sequence=1, event_id="raised-again")
    inbox = svc.spec.tables.events.inbox

    async def applied() -> bool:
        async with svc.ctx.db.transaction() as s:
            found = await s.execute(select(inbox.c.event_id).where(inbox.c.event_id == "raised-again"))
        return found.first() is not None

    await eventually(applied)
    assert await at(("esc-1", "L3_judicial"))
    resolved = EscalationResolved(
        escalation_id="esc-1", case_id=case["id"], level="L3_judicial", resolution="withdrawn"
    )
    await event_publisher.publish(resolved, subject="esc-1", sequence=3)

    async def persuading() -> bool:
        return (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()["state"] == "persuading"

    await eventually(persuading)
    assert await at(("esc-1", "L3_judicial"))
    assert (await move(svc, h, case["id"], "escalated", evidence=evidence)).status_code == 200
    second = EscalationRaised(escalation_id="esc-2", case_id=case["id"], level="L2_town_order")
    await event_publisher.publish(second, subject="esc-2", sequence=1)
    await eventually(lambda: at(("esc-2", "L2_town_order")))


async def _escalated_case(svc, h) -> dict:
    case = await open_case(svc, h)
    evidence = [{"kind": "written_refusal", "description": "家长拒绝书"}]
    for step, fields in (
        ("confirmed", ENTRY_FIELDS["confirmed"]),
        ("persuading", {}),
        ("escalated", {"evidence": evidence}),
    ):
        assert (await move(svc, h, case["id"], step, **fields)).status_code == 200
    return case


async def _on_ladder_of_episode_7(svc, h, event_publisher) -> dict:
    """An escalated case that follows the ladder "esc-7" of episode 7 at L2 (EscalationRaised applied)."""
    case = await _escalated_case(svc, h)
    raised = EscalationRaised(escalation_id="esc-7", case_id=case["id"], level="L2_town_order", episode=7)
    await event_publisher.publish(raised, subject="esc-7", sequence=1)
    await eventually(lambda: _is(svc, case["id"], ("escalated", "esc-7", "L2_town_order", 7)))
    return case


async def _case_row(svc, case_id: str):
    from sqlalchemy import select

    from casework.cases.models import Case

    async with svc.ctx.db.transaction() as s:
        return (await s.execute(select(Case).where(Case.id == case_id))).scalar_one()


async def _ladder_of(svc, case_id: str) -> tuple[str, str | None, str | None, int | None]:
    """The case's state and the ladder it follows: escalation id, level, episode."""
    row = await _case_row(svc, case_id)
    return row.state, row.escalation_id, row.escalation_level, row.escalation_episode


async def test_a_late_resolution_of_an_earlier_episodes_ladder_leaves_the_case_escalated(
    start_service, tokens, event_publisher
):
    """A case escalated on the ladder of episode 7 (the case event that started it) receives the
    resolution of another ladder of episode 3, an earlier episode's, delivered late or replayed from dead
    letters: it is ignored, the case stays escalated on its ladder (before, the case took the old ladder
    and moved back to persuading). The resolution of its own ladder then moves it."""
    svc = await start_service("casework")
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    case = await _on_ladder_of_episode_7(svc, h, event_publisher)

    old = EscalationResolved(
        escalation_id="esc-3", case_id=case["id"], level="L3_judicial", resolution="closed", episode=3
    )
    late = await event_publisher.publish(old, subject="esc-3", sequence=4)
    await eventually(lambda: svc.handled(late.id))
    assert await _ladder_of(svc, case["id"]) == ("escalated", "esc-7", "L2_town_order", 7)

    own = EscalationResolved(
        escalation_id="esc-7", case_id=case["id"], level="L2_town_order", resolution="returned", episode=7
    )
    await event_publisher.publish(own, subject="esc-7", sequence=2)
    await eventually(lambda: _is(svc, case["id"], ("returned", "esc-7", "L2_town_order", 7)))
    assert len(await outbox_events(svc, CaseReturned)) == 1


async def test_a_late_step_of_an_earlier_episodes_ladder_is_ignored(start_service, tokens, event_publisher):
    """EscalationRaised / EscalationAdvanced of a ladder of an earlier episode than the case's (another
    escalation id) do not replace the case's ladder (before, another escalation id was taken as a new
    ladder). A step of the case's own ladder, of the same episode or a later one (a request lifted it),
    still applies, and so does a step without an episode (a ladder from before they were recorded)."""
    svc = await start_service("casework")
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    case = await _on_ladder_of_episode_7(svc, h, event_publisher)

    stale = [
        EscalationRaised(escalation_id="esc-3", case_id=case["id"], level="L1_school", episode=3),
        EscalationAdvanced(
            escalation_id="esc-3",
            case_id=case["id"],
            level="L3_judicial",
            from_level="L2_town_order",
            episode=3,
        ),
    ]
    late = [
        await event_publisher.publish(event, subject="esc-3", sequence=n) for n, event in enumerate(stale, 1)
    ]
    await eventually(lambda: svc.handled(*(e.id for e in late)))
    assert await _ladder_of(svc, case["id"]) == ("escalated", "esc-7", "L2_town_order", 7)

    lifted = EscalationAdvanced(
        escalation_id="esc-7", case_id=case["id"], level="L3_judicial", from_level="L2_town_order", episode=9
    )
    await event_publisher.publish(lifted, subject="esc-7", sequence=2)
    await eventually(lambda: _is(svc, case["id"], ("escalated", "esc-7", "L3_judicial", 9)))
    unrecorded = EscalationAdvanced(
        escalation_id="esc-7", case_id=case["id"], level="L4_legal_action", from_level="L3_judicial"
    )
    await event_publisher.publish(unrecorded, subject="esc-7", sequence=3)
    await eventually(lambda: _is(svc, case["id"], ("escalated", "esc-7", "L4_legal_action", 9)))


async def _is(svc, case_id: str, expected: tuple) -> bool:
    return await _ladder_of(svc, case_id) == expected


async def test_the_case_shows_the_episode_of_the_ladder_it_follows(start_service, tokens, event_publisher):
    """The case's answers (its read, the case list, the confirmed ledger) show `escalation_episode`, the
    episode of the ladder the case follows as the ladder's events carry it: null before any, 7 once the
    ladder of episode 7 is raised, still 7 after a late event of an earlier episode's ladder (ignored).
    It is read-only: documented as such in the OpenAPI document, and a PATCH naming it is refused
    (before, the episode was kept but no answer showed it)."""
    svc = await start_service("casework")
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    case = await _escalated_case(svc, h)

    async def shown() -> set[int | None]:
        one = (await svc.client.get(f"/v1/cases/{case['id']}", headers=h)).json()
        listed = [c for c in await _cases(svc, h) if c["id"] == case["id"]]
        ledger = (await svc.client.get("/v1/cases/ledgers/confirmed", headers=h)).json()["items"]
        in_ledger = [c for c in ledger if c["id"] == case["id"]]
        return {c["escalation_episode"] for c in (one, *listed, *in_ledger)}

    assert await shown() == {None}
    raised = EscalationRaised(escalation_id="esc-7", case_id=case["id"], level="L2_town_order", episode=7)
    await event_publisher.publish(raised, subject="esc-7", sequence=1)

    async def seven() -> bool:
        return await shown() == {7}

    await eventually(seven)
    old = EscalationAdvanced(
        escalation_id="esc-3", case_id=case["id"], level="L3_judicial", from_level="L2_town_order", episode=3
    )
    late = await event_publisher.publish(old, subject="esc-3", sequence=2)
    await eventually(lambda: svc.handled(late.id))
    assert await shown() == {7}

    read = await svc.client.get(f"/v1/cases/{case['id']}", headers=h)
    refused = await svc.client.patch(
        f"/v1/cases/{case['id']}",
        json={"escalation_episode": 9},
        headers={**h, "If-Match": read.headers["ETag"]},
    )
    assert refused.status_code == 422, refused.text
    assert await shown() == {7}
    spec = (await svc.client.get("/openapi.json")).json()
    field = spec["components"]["schemas"]["CasePublic"]["properties"]["escalation_episode"]
    assert field["readOnly"] is True
    assert field["description"].startswith("Read-only. The episode of the escalation ladder the case follows")


async def test_the_case_etag_moves_when_a_signal_or_a_link_changes_the_case(
    start_service, tokens, event_publisher
):
    """A signal attaching to the open case (more identifiers, a school, one more signal) and
    enrollment's StudentLinked filling the child id change the case: its version and ETag move, so an
    app's cached copy is seen as stale (412 naming the fields) instead of one ETag covering two bodies."""
    svc = await start_service("casework")
    await svc.wait_events_ready()
    town = tokens.headers("town", TOWN_A)
    child_id, student_id = new_child()
    first = _signal(1, child_id, None, "verification_not_in_school", school_code=None)
    await event_publisher.publish(first, subject="sig-1")
    await eventually(lambda: _has(svc, town, 1))
    [case] = await _cases(svc, town)
    url = f"/v1/cases/{case['id']}"
    before = (await svc.client.get(url, headers=town)).headers["ETag"]
    await event_publisher.publish(_signal(2, child_id, student_id), subject="sig-2")

    async def attached() -> bool:
        return (await svc.client.get(url, headers=town)).json()["signal_count"] == 2

    await eventually(attached)
    after = await svc.client.get(url, headers=town)
    assert (after.json()["school_code"], after.json()["student_id"]) == (SCHOOL_A, student_id)
    assert after.headers["ETag"] != before
    school = tokens.headers("school", SCHOOL_A)
    stale = await svc.client.patch(url, json={"analysis": "厌学"}, headers={**school, "If-Match": before})
    assert stale.status_code == 412
    assert {"school_code", "student_id", "signal_count"} <= set(stale.json()["conflicting_fields"])

    # A case opened from a record not yet linked to its child learns the child id: a new ETag too.
    _, unlinked = new_child()
    await event_publisher.publish(_signal(3, None, unlinked), subject="sig-3")
    await eventually(lambda: _has(svc, school, 2))
    [opened] = [c for c in await _cases(svc, school) if c["student_id"] == unlinked]
    url = f"/v1/cases/{opened['id']}"
    before = (await svc.client.get(url, headers=school)).headers["ETag"]
    linked = StudentLinked(
        student_id=unlinked, child_id="child-linked", school_code=SCHOOL_A, status="enrolled"
    )
    await event_publisher.publish(linked, subject=unlinked, sequence=2)

    async def filled() -> bool:
        return (await svc.client.get(url, headers=school)).json()["child_id"] == "child-linked"

    await eventually(filled)
    assert (await svc.client.get(url, headers=school)).headers["ETag"] != before


async def test_a_late_signal_detected_before_the_closure_is_recorded_without_reopening(
    start_service, tokens, event_publisher
):
    """The relapse watch reopens a closed case on a dropout detected after its closure. A signal
    detected on or before the closure day and delivered late is about the episode already closed: it
    is recorded in the case's signals (effect ``recorded``) and the case stays closed; a redelivery of
    it is a duplicate of that case. A signal detected after the closure still reopens it."""
    svc = await start_service("casework", attendance_days_for_closure=1)
    await svc.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)
    child_id, student_id = new_child()
    await event_publisher.publish(_signal(1, child_id, student_id), subject="s1")
    await eventually(lambda: _has(svc, h, 1))
    [case] = await _cases(svc, h)
    await enrol(svc, student_id=student_id, child_id=child_id)
    await attend(svc, h, case, since="2026-11-02")
    r = await move(svc, h, case["id"], "closed", closure_reason="unfounded", on="2026-11-20")
    assert r.status_code == 200, r.text
    signals_url = f"/v1/cases/{case['id']}/signals"

    late = _signal(2, child_id, student_id, detected_on=dt.date(2026, 11, 3))
    await event_publisher.publish(late, subject="s2")

    async def recorded() -> bool:
        return len((await svc.client.get(signals_url, headers=h)).json()) == 2

    await eventually(recorded)
    assert [s["effect"] for s in (await svc.client.get(signals_url, headers=h)).json()] == [
        "opened",
        "recorded",
    ]
    [still] = await _cases(svc, h)
    assert (still["state"], still["reopen_count"]) == ("closed", 0)
    assert await outbox_events(svc, CaseReopened) == []
    redelivered = Signal(
        signal_id=late.signal_id, signal=late.signal, detected_on=late.detected_on, child_id=child_id
    )
    async with svc.ctx.db.transaction() as s:
        again, effect = await receive_signal(session=s, ctx=svc.ctx, signal=redelivered, actor="enrollment")
    assert (again.id, effect) == (case["id"], "duplicate")

    relapse = _signal(3, child_id, student_id, detected_on=dt.date(2026, 11, 21))
    await event_publisher.publish(relapse, subject="s3")

    async def reopened() -> bool:
        return (await _cases(svc, h))[0]["state"] == "suspected"

    await eventually(reopened)
    assert len(await outbox_events(svc, CaseReopened)) == 1


async def _lock_waiters(svc) -> int:
    """How many of the database's sessions wait for a lock (PostgreSQL)."""
    async with svc.ctx.db.transaction() as s:
        statement = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int((await s.execute(statement)).scalar_one())


async def _while_the_first_is_open(svc, first, second) -> tuple[object, object]:
    """Run ``first`` in a transaction held open until ``second`` (another transaction, started after
    ``first`` applied) waits for a lock or finishes; then let ``first`` commit. Both results."""
    applied, release = asyncio.Event(), asyncio.Event()

    async def one() -> object:
        async with svc.ctx.db.transaction() as s:
            result = await first(s)
            applied.set()
            await release.wait()
        return result

    task = asyncio.create_task(one())
    await applied.wait()
    other = asyncio.create_task(second())
    deadline = time.monotonic() + 5
    while not other.done() and await _lock_waiters(svc) == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    release.set()
    return await task, await other


def _no_sqlite(svc) -> None:
    if svc.ctx.db.dialect != "postgresql":
        pytest.skip(
            "SQLite has one writer for the whole database: a signal's consumer takes its write lock with "
            "the inbox claim and a school's open before it looks for the child's case (lock_child), so "
            "two transactions never look for and open a child's case at the same time"
        )


async def _open_cases_of(svc, child_id: str, student_id: str) -> list[Case]:
    async with svc.ctx.db.transaction() as s:
        query = select(Case).where(
            Case.open_key.is_not(None), or_(Case.child_id == child_id, Case.student_id == student_id)
        )
        return list((await s.execute(query)).scalars())


@pytest.mark.parametrize("second_knows", ["student_id", "student_id_linked_in_the_read_model"])
async def test_two_signals_for_one_child_racing_with_different_identifiers_give_one_case(
    start_service, second_knows
):
    """Two signals for one child applied at the same moment (two transactions on the database): one
    knows the child and its record, the other only the record (or, when the student read model links
    the record to the child, only the child and the other only the record). The second waits for the
    first (a lock on every identifier a signal carries, after the read model added the child of a
    record) and attaches to its case: one open case (before, each keyed its case on another identifier
    and neither saw the other's uncommitted row: two open cases for one child)."""
    svc = await start_service("casework")
    _no_sqlite(svc)
    child_id, student_id = new_child()
    if second_knows == "student_id":
        first_ids = {"child_id": child_id, "student_id": student_id}
    else:
        await enrol(svc, student_id=student_id, child_id=child_id)
        first_ids = {"child_id": child_id}

    def signal(n: int, **ids) -> Signal:
        return Signal(
            signal_id=f"race-{child_id}-{n}",
            signal="absence_four_weeks",
            detected_on=dt.date(2026, 11, 2),
            school_code=SCHOOL_A,
            hukou_town=TOWN_A,
            **ids,
        )

    async def first(s) -> str:
        return (
            await receive_signal(session=s, ctx=svc.ctx, signal=signal(1, **first_ids), actor="enrollment")
        )[1]

    async def second() -> str:
        async with svc.ctx.db.transaction() as s:
            only_record = signal(2, student_id=student_id)
            return (await receive_signal(session=s, ctx=svc.ctx, signal=only_record, actor="enrollment"))[1]

    effects = await _while_the_first_is_open(svc, first, second)
    assert effects == ("opened", "attached")
    [case] = await _open_cases_of(svc, child_id, student_id)
    assert (case.child_id, case.student_id, case.signal_count) == (child_id, student_id, 2)


async def test_a_school_opening_a_case_while_a_signal_opens_it_gets_the_signals_case(start_service, tokens):
    """A school opens the child's case by hand (naming the record only) while enrollment's signal for the
    same child is being applied in another transaction: the school's open waits for it and answers 409
    ``case_already_open`` with the signal's case (before: 201 and two open cases for one child)."""
    svc = await start_service("casework")
    _no_sqlite(svc)
    h = tokens.headers("school", SCHOOL_A)
    child_id, student_id = new_child()
    signal = Signal(
        signal_id=f"race-{child_id}",
        signal="absence_four_weeks",
        detected_on=dt.date(2026, 11, 2),
        child_id=child_id,
        student_id=student_id,
        school_code=SCHOOL_A,
        hukou_town=TOWN_A,
    )

    async def first(s) -> Case:
        return (await receive_signal(session=s, ctx=svc.ctx, signal=signal, actor="enrollment"))[0]

    async def second():
        return await svc.client.post(
            "/v1/cases", json={"student_id": student_id, "school_code": SCHOOL_A}, headers=h
        )

    case, r = await _while_the_first_is_open(svc, first, second)
    assert r.status_code == 409, r.text
    assert (r.json()["code"], r.json()["case_id"]) == ("case_already_open", case.id)
    assert [c.id for c in await _open_cases_of(svc, child_id, student_id)] == [case.id]


async def test_an_enrollment_signal_brings_a_misplaced_case_to_the_students_school(
    start_service, tokens, event_publisher
):
    """Enrollment's signal names the school where the student is enrolled and the child's hukou: when it
    attaches to a case kept elsewhere (a school opened it for a child the read model did not know yet),
    the case moves to that school and town, with a new version, so the student's school sees its case
    (before, the signal attached and the case stayed with the first school; B saw nothing)."""
    svc = await start_service("casework")
    await svc.wait_events_ready()
    a, b = tokens.headers("school", SCHOOL_A), tokens.headers("school", SCHOOL_B)
    child_id, student_id = new_child()
    opened = await open_case(svc, a, child_id=child_id, student_id=student_id)
    signal = _signal(
        1, child_id, student_id, school_code=SCHOOL_B, hukou_town=TOWN_B, hukou_school_district="37040610101"
    )
    await event_publisher.publish(signal, subject="s1")
    await eventually(lambda: _has(svc, b, 1))
    [seen] = await _cases(svc, b)
    assert (seen["id"], seen["school_code"], seen["hukou_town"]) == (opened["id"], SCHOOL_B, TOWN_B)
    assert seen["signal_count"] == 2 and seen["version"] > opened["version"]
    assert await _cases(svc, a) == []


async def test_a_late_enrollment_signal_does_not_take_the_case_back_to_the_childs_old_school(
    start_service, tokens, event_publisher
):
    """A signal detected before the one the case already holds (delivered late, or replayed from dead
    letters: detected at school A before the child's transfer) is recorded on the case, but the school
    and hukou stay those of the newer signal: school B, where the child is enrolled now, keeps its case
    (before, the late signal moved the case back to A and B got 404 for it)."""
    svc = await start_service("casework")
    await svc.wait_events_ready()
    a, b = tokens.headers("school", SCHOOL_A), tokens.headers("school", SCHOOL_B)
    bureau = tokens.headers("bureau", "370406D01")
    child_id, student_id = new_child()
    newer = _signal(
        2, child_id, student_id, school_code=SCHOOL_B, hukou_town=TOWN_B, hukou_school_district="37040610101"
    )
    await event_publisher.publish(newer, subject="s2")
    await eventually(lambda: _has(svc, b, 1))
    older = _signal(1, child_id, student_id, detected_on=dt.date(2026, 10, 1))  # school A, town A
    await event_publisher.publish(older, subject="s1")

    async def recorded() -> bool:
        return [c["signal_count"] for c in await _cases(svc, bureau)] == [2]

    await eventually(recorded)
    [seen] = await _cases(svc, b)
    assert (seen["school_code"], seen["hukou_town"]) == (SCHOOL_B, TOWN_B)
    assert await _cases(svc, a) == []
