"""The visit-quota deadline: per school and semester at the semester's end, judged from casework's visits,
census and roster; a lapse names the school and the shortfall (exact with the roster, a lower bound
without it)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from sqlalchemy import func, select

from baoxue.contracts.casework import CensusCompleted, RosterSet, VisitRecorded
from baoxue.testing.plugin import eventually
from notify.bulletins.models import CensusFact, RosterFact, VisitFact
from notify.deadlines.models import Deadline
from notify.deadlines.service import sweep
from tests.notify.conftest import SCHOOL_A, SCHOOL_B, TOWN_A, start_notify

SPRING = "2026-spring"


async def _sweep(svc, today):
    async with svc.ctx.db.transaction() as s:
        return await sweep(session=s, ctx=svc.ctx, today=today)


async def _quota(svc, org) -> Deadline:
    async with svc.ctx.db.transaction() as s:
        return (
            await s.execute(
                select(Deadline).where(
                    Deadline.kind == "visit_quota", Deadline.org == org, Deadline.subject_id == SPRING
                )
            )
        ).scalar_one()


def _visit(school: str, student: str, *, special: bool, on: dt.date) -> VisitRecorded:
    return VisitRecorded(
        visit_id=str(uuid.uuid4()),
        student_id=student,
        school_code=school,
        teacher="t-0001",
        semester=SPRING,
        visited_on=on,
        special_group=special,
    )


async def test_visit_coverage_is_judged_at_the_semester_end(start_service, event_publisher, tokens):
    svc = await start_notify(start_service)
    opened = await _sweep(svc, dt.date(2026, 7, 1))
    assert opened.opened > 0
    quota_a = await _quota(svc, SCHOOL_A)
    assert quota_a.due_date == dt.date(2026, 7, 15) and quota_a.status == "open"

    # School A: the census implies at least 2 special-group students; one of them was visited twice
    # (quota 2), the other once, an ordinary student once: one visit short. School B: ordinary visits only.
    s1, s2, s3 = (str(uuid.uuid4()) for _ in range(3))
    events = [
        _visit(SCHOOL_A, s1, special=True, on=dt.date(2026, 4, 1)),
        _visit(SCHOOL_A, s1, special=True, on=dt.date(2026, 6, 1)),
        _visit(SCHOOL_A, s2, special=True, on=dt.date(2026, 5, 1)),
        _visit(SCHOOL_A, s3, special=False, on=dt.date(2026, 5, 2)),
        _visit(SCHOOL_B, str(uuid.uuid4()), special=False, on=dt.date(2026, 5, 3)),
        _visit(SCHOOL_B, str(uuid.uuid4()), special=False, on=dt.date(2026, 5, 4)),
    ]
    for event in events:
        await event_publisher.publish(event, subject=event.visit_id)
    census = CensusCompleted(
        census_id="k-a",
        school_code=SCHOOL_A,
        semester=SPRING,
        completed_on=dt.date(2026, 3, 10),
        on_time=True,
        counts_by_category={"disabled": 2, "left_behind": 1},
    )
    await event_publisher.publish(census, subject="k-a")

    async def recorded() -> bool:
        async with svc.ctx.db.transaction() as s:
            visits = (await s.execute(select(func.count()).select_from(VisitFact))).scalar_one()
            censuses = (await s.execute(select(func.count()).select_from(CensusFact))).scalar_one()
        return visits == 6 and censuses == 1

    await eventually(recorded)
    # On the due date itself nothing is judged yet.
    await _sweep(svc, dt.date(2026, 7, 15))
    assert (await _quota(svc, SCHOOL_A)).status == "open"

    result = await _sweep(svc, dt.date(2026, 7, 16))
    a, b = await _quota(svc, SCHOOL_A), await _quota(svc, SCHOOL_B)
    assert a.status == "lapsed" and a.on_time is False
    assert a.warnings.split(",") == [
        "visits:4",
        "students_visited:3",
        "special_students_visited:2",
        "special_students_at_least:2",
        "visit_shortfall_at_least:1",
        "roster_unknown",
    ]
    assert b.status == "met" and b.on_time is True and b.closed_on == dt.date(2026, 7, 15)
    assert "visit_shortfall_at_least:0" in b.warnings and "roster_unknown" in b.warnings
    # A school nobody visited owes at least one visit.
    other = next(s.code for s in svc.ctx.directory.schools() if s.code not in (SCHOOL_A, SCHOOL_B))
    assert "visit_shortfall_at_least:1" in (await _quota(svc, other)).warnings
    assert result.lapsed >= 2

    # DeadlineLapsed names the school and the semester; the lapse message carries the shortfall.
    table = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        envelopes = [json.loads(r) for r in (await s.execute(select(table.c.envelope))).scalars()]
    lapsed = [
        e["data"]
        for e in envelopes
        if e["type"].endswith("deadline.lapsed.v1") and e["data"]["kind"] == "visit_quota"
    ]
    assert {"org": SCHOOL_A, "subject_id": SPRING} in [
        {"org": d["org"], "subject_id": d["subject_id"]} for d in lapsed
    ]
    assert SCHOOL_B not in {d["org"] for d in lapsed}
    inbox = (
        await svc.client.get(
            "/v1/inbox", params={"kind": "lapse"}, headers=tokens.headers("school", SCHOOL_A)
        )
    ).json()["items"]
    [message] = [m for m in inbox if m["ref_id"] == a.id]
    assert "学期家访覆盖" in message["title"] and "visit_shortfall_at_least=1" in message["body"]
    listed = (
        await svc.client.get(
            "/v1/deadlines",
            params={"kind": "visit_quota", "status": "lapsed", "org": SCHOOL_A},
            headers=tokens.headers("town", TOWN_A),
        )
    ).json()["items"]
    assert [d["id"] for d in listed] == [a.id] and "visit_shortfall_at_least:1" in listed[0]["warnings"]


def _roster(school: str, students: int, special: int) -> RosterSet:
    return RosterSet(school_code=school, semester=SPRING, students=students, special_group_students=special)


async def test_with_the_roster_the_shortfall_is_exact(start_service, event_publisher, tokens):
    svc = await start_notify(start_service)
    await _sweep(svc, dt.date(2026, 7, 1))
    other = next(s.code for s in svc.ctx.directory.schools() if s.code not in (SCHOOL_A, SCHOOL_B))
    unlisted = next(s.code for s in svc.ctx.directory.schools() if s.code not in (SCHOOL_A, SCHOOL_B, other))
    # School A lists 3 students, 1 in a special group (roster version 2); version 1 (5 students, 2
    # special) arrives late and must not replace it. Visited: the special one once, one other student.
    # School B lists 2 (1 special): the special one visited twice, the other once. Another school's
    # roster is empty; a fourth school has none.
    await event_publisher.publish(_roster(SCHOOL_A, 3, 1), subject=f"{SCHOOL_A}:{SPRING}", sequence=2)
    late = await event_publisher.publish(_roster(SCHOOL_A, 5, 2), subject=f"{SCHOOL_A}:{SPRING}", sequence=1)
    await event_publisher.publish(_roster(SCHOOL_B, 2, 1), subject=f"{SCHOOL_B}:{SPRING}", sequence=1)
    await event_publisher.publish(_roster(other, 0, 0), subject=f"{other}:{SPRING}", sequence=1)
    a_special, a_other, b_special, b_other = (str(uuid.uuid4()) for _ in range(4))
    visits = [
        _visit(SCHOOL_A, a_special, special=True, on=dt.date(2026, 4, 1)),
        _visit(SCHOOL_A, a_other, special=False, on=dt.date(2026, 4, 2)),
        _visit(SCHOOL_B, b_special, special=True, on=dt.date(2026, 4, 3)),
        _visit(SCHOOL_B, b_special, special=True, on=dt.date(2026, 6, 3)),
        _visit(SCHOOL_B, b_other, special=False, on=dt.date(2026, 4, 4)),
    ]
    for event in visits:
        await event_publisher.publish(event, subject=event.visit_id)
    inbox = svc.spec.tables.events.inbox

    async def recorded() -> bool:
        async with svc.ctx.db.transaction() as s:
            n = (await s.execute(select(func.count()).select_from(VisitFact))).scalar_one()
            seen = (await s.execute(select(inbox.c.event_id).where(inbox.c.event_id == late.id))).first()
        return n == 5 and seen is not None

    await eventually(recorded)
    async with svc.ctx.db.transaction() as s:
        fact = await s.get(RosterFact, (SCHOOL_A, SPRING))
    assert fact is not None and (fact.students, fact.special_group_students, fact.sequence) == (3, 1, 2)

    await _sweep(svc, dt.date(2026, 7, 16))
    a, b = await _quota(svc, SCHOOL_A), await _quota(svc, SCHOOL_B)
    # A: the unvisited ordinary student owes 1, the special one a second visit: 2.
    assert a.status == "lapsed" and a.on_time is False
    assert a.warnings.split(",") == [
        "visits:2",
        "students_visited:2",
        "special_students_visited:1",
        "roster_students:3",
        "roster_special:1",
        "visit_shortfall:2",
    ]
    assert b.status == "met" and b.on_time is True and b.closed_on == dt.date(2026, 7, 15)
    assert b.warnings.split(",") == [
        "visits:3",
        "students_visited:2",
        "special_students_visited:1",
        "roster_students:2",
        "roster_special:1",
        "visit_shortfall:0",
    ]
    # No student listed, none owed; without a roster the lower bound as before.
    empty = await _quota(svc, other)
    assert empty.status == "met" and "visit_shortfall:0" in empty.warnings
    assert "roster_unknown" not in empty.warnings
    unknown = await _quota(svc, unlisted)
    assert unknown.status == "lapsed"
    assert unknown.warnings.split(",")[-2:] == ["visit_shortfall_at_least:1", "roster_unknown"]

    messages = (
        await svc.client.get(
            "/v1/inbox", params={"kind": "lapse"}, headers=tokens.headers("school", SCHOOL_A)
        )
    ).json()["items"]
    [message] = [m for m in messages if m["ref_id"] == a.id]
    assert "roster_students=3 roster_special=1 visit_shortfall=2" in message["body"]


async def test_with_the_roster_unvisited_special_group_students_owe_the_quota(start_service, event_publisher):
    svc = await start_notify(start_service, visit_quota_special_group=3)
    await _sweep(svc, dt.date(2026, 7, 1))
    # 4 listed, 2 special: one ordinary student visited once, one special student visited once.
    # Owed: 1 unvisited ordinary student (1) + 1 unvisited special (3) + the visited special's 2 more = 6.
    await event_publisher.publish(_roster(SCHOOL_A, 4, 2), subject=f"{SCHOOL_A}:{SPRING}", sequence=1)
    for event in (
        _visit(SCHOOL_A, str(uuid.uuid4()), special=False, on=dt.date(2026, 4, 1)),
        _visit(SCHOOL_A, str(uuid.uuid4()), special=True, on=dt.date(2026, 4, 2)),
    ):
        await event_publisher.publish(event, subject=event.visit_id)

    async def recorded() -> bool:
        async with svc.ctx.db.transaction() as s:
            visits = (await s.execute(select(func.count()).select_from(VisitFact))).scalar_one()
            rosters = (await s.execute(select(func.count()).select_from(RosterFact))).scalar_one()
        return visits == 2 and rosters == 1

    await eventually(recorded)
    await _sweep(svc, dt.date(2026, 7, 16))
    a = await _quota(svc, SCHOOL_A)
    assert a.status == "lapsed" and "visit_shortfall:6" in a.warnings.split(",")
