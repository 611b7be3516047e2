"""Verification task deadlines follow the task: superseded (cancelled), reopened (open again), moved to
another school district (the old one's cancelled, the new one's open), resolved (met on the day the
resolution was recorded, on time as enrollment judged it on the server's day); stale events dropped."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from baoxue.contracts.enrollment import (
    ChildUnaccounted,
    VerificationTaskResolved,
    VerificationTaskSuperseded,
)
from baoxue.testing.plugin import eventually
from notify.deadlines.models import Deadline
from notify.deadlines.service import sweep
from tests.notify.conftest import BUREAU, DISTRICT_A, TOWN_A, TOWN_B, at_ten, start_notify

DISTRICT_B = "37040610101"
DUE = dt.date(2026, 10, 30)


async def _task_deadlines(svc, task_id: str) -> dict[str, tuple]:
    """{district: (status, due, closed on, on time)} of the task's deadlines."""
    async with svc.ctx.db.transaction() as s:
        rows = (
            await s.execute(
                select(Deadline).where(Deadline.kind == "verification_task", Deadline.subject_id == task_id)
            )
        ).scalars()
        return {d.org: (d.status, d.due_date, d.closed_on, d.on_time) for d in rows}


def unaccounted(task_id: str, district: str = DISTRICT_A, due: dt.date = DUE) -> ChildUnaccounted:
    return ChildUnaccounted(
        task_id=task_id,
        campaign_id="c1",
        child_id=str(uuid.uuid4()),
        hukou_town=TOWN_A if district == DISTRICT_A else TOWN_B,
        hukou_school_district=district,
        due_date=due,
    )


def superseded(task_id: str, district: str = DISTRICT_A) -> VerificationTaskSuperseded:
    return VerificationTaskSuperseded(task_id=task_id, campaign_id="c1", hukou_school_district=district)


class Publisher:
    """Publishes a task's events on given days and waits until notify has handled them."""

    def __init__(self, svc, event_publisher) -> None:
        self.svc, self.publisher = svc, event_publisher

    async def __call__(self, data, *, task_id: str, sequence: int, day: dt.date) -> None:
        envelope = await self.publisher.publish(data, subject=task_id, sequence=sequence, time=at_ten(day))
        await eventually(lambda: self.svc.handled(envelope.id))


async def _sweep(svc, today: dt.date):
    async with svc.ctx.db.transaction() as s:
        return await sweep(session=s, ctx=svc.ctx, today=today)


async def test_a_superseded_task_cancels_its_deadline_and_a_reopened_one_opens_it_again(
    start_service, event_publisher
):
    """The district owes nothing for a task that no longer exists: its deadline is cancelled, and does
    not lapse. A later run reopening the task opens the same deadline again, with the event's due date."""
    svc = await start_notify(start_service)
    publish = Publisher(svc, event_publisher)
    gone, back = str(uuid.uuid4()), str(uuid.uuid4())
    for task in (gone, back):
        await publish(unaccounted(task), task_id=task, sequence=1, day=dt.date(2026, 9, 30))
        await publish(superseded(task), task_id=task, sequence=2, day=dt.date(2026, 10, 9))
        assert await _task_deadlines(svc, task) == {
            DISTRICT_A: ("cancelled", DUE, dt.date(2026, 10, 9), None)
        }
    await publish(
        unaccounted(back, due=dt.date(2026, 11, 6)), task_id=back, sequence=3, day=dt.date(2026, 10, 16)
    )
    assert await _task_deadlines(svc, back) == {DISTRICT_A: ("open", dt.date(2026, 11, 6), None, None)}
    # the same reopening replayed (from dead letters) changes nothing
    await publish(unaccounted(back), task_id=back, sequence=3, day=dt.date(2026, 10, 16))
    assert (await _task_deadlines(svc, back))[DISTRICT_A][:2] == ("open", dt.date(2026, 11, 6))

    await _sweep(svc, dt.date(2026, 11, 2))
    assert (await _task_deadlines(svc, gone))[DISTRICT_A][0] == "cancelled"  # not lapsed
    assert (await _task_deadlines(svc, back))[DISTRICT_A][0] == "open"
    await _sweep(svc, dt.date(2026, 11, 9))
    assert (await _task_deadlines(svc, back))[DISTRICT_A][0] == "lapsed"


async def test_a_moved_task_cancels_the_old_districts_deadline_and_stale_events_are_dropped(
    start_service, event_publisher, tokens
):
    """ChildUnaccounted naming another district (the task moved with the child's hukou): the old
    district's open deadline is cancelled, the new district's opened; only the new one can lapse, and the
    old district's scorecard counts no task. An older event of the task arriving late (replayed from
    dead letters) is stale: it neither moves the task back nor opens anything."""
    svc = await start_notify(start_service)
    publish = Publisher(svc, event_publisher)
    task = str(uuid.uuid4())
    await publish(unaccounted(task), task_id=task, sequence=1, day=dt.date(2026, 9, 30))
    await publish(unaccounted(task, DISTRICT_B), task_id=task, sequence=2, day=dt.date(2026, 10, 12))
    expected = {
        DISTRICT_A: ("cancelled", DUE, dt.date(2026, 10, 12), None),
        DISTRICT_B: ("open", DUE, None, None),
    }
    assert await _task_deadlines(svc, task) == expected
    await publish(unaccounted(task), task_id=task, sequence=1, day=dt.date(2026, 9, 30))  # stale
    assert await _task_deadlines(svc, task) == expected

    # superseded before its opening was applied (dead-lettered): the opening replayed later is stale
    early = str(uuid.uuid4())
    await publish(superseded(early), task_id=early, sequence=2, day=dt.date(2026, 10, 9))
    await publish(unaccounted(early), task_id=early, sequence=1, day=dt.date(2026, 9, 30))
    assert [s for s, *_ in (await _task_deadlines(svc, early)).values()] == ["cancelled"]

    await _sweep(svc, dt.date(2026, 11, 2))
    assert {org: d[0] for org, d in (await _task_deadlines(svc, task)).items()} == {
        DISTRICT_A: "cancelled",
        DISTRICT_B: "lapsed",
    }
    cards = (
        await svc.client.get(
            "/v1/scorecards",
            params={"year": 2026, "level": "school"},
            headers=tokens.headers("bureau", BUREAU),
        )
    ).json()
    by_org = {c["org"]: c for c in cards}
    assert (by_org[DISTRICT_B]["verification_tasks"], by_org[DISTRICT_B]["lapsed"]) == (1, 1)
    assert by_org.get(DISTRICT_A, {}).get("verification_tasks", 0) == 0


async def test_a_task_resolution_is_judged_on_the_day_it_was_recorded_not_the_day_it_states(
    start_service, event_publisher
):
    """A resolution recorded after the due date stating an earlier day (offline work is allowed to state
    a past day) is met late: the deadline closes on the event's day (China's), on time as enrollment
    judged it on its server's day. One recorded in time is met on time."""
    svc = await start_notify(start_service)
    publish = Publisher(svc, event_publisher)
    late, timely = str(uuid.uuid4()), str(uuid.uuid4())
    for task in (late, timely):
        await publish(unaccounted(task), task_id=task, sequence=1, day=dt.date(2026, 9, 30))

    def resolved(task_id: str, on: dt.date, on_time: bool) -> VerificationTaskResolved:
        return VerificationTaskResolved(
            task_id=task_id,
            campaign_id="c1",
            child_id=str(uuid.uuid4()),
            outcome="abroad",
            hukou_school_district=DISTRICT_A,
            resolved_on=on,
            on_time=on_time,
        )

    await publish(
        resolved(late, dt.date(2026, 10, 28), False), task_id=late, sequence=2, day=dt.date(2026, 11, 3)
    )
    await publish(
        resolved(timely, dt.date(2026, 10, 20), True), task_id=timely, sequence=2, day=dt.date(2026, 10, 21)
    )
    assert await _task_deadlines(svc, late) == {DISTRICT_A: ("met", DUE, dt.date(2026, 11, 3), False)}
    assert await _task_deadlines(svc, timely) == {DISTRICT_A: ("met", DUE, dt.date(2026, 10, 21), True)}
    # a replayed opening cannot reopen a resolved task's deadline
    await publish(unaccounted(late), task_id=late, sequence=1, day=dt.date(2026, 9, 30))
    assert (await _task_deadlines(svc, late))[DISTRICT_A][0] == "met"


def _resolved_by(
    task_id: str, district: str, *, on_time: bool, due: dt.date | None = DUE
) -> VerificationTaskResolved:
    return VerificationTaskResolved(
        task_id=task_id,
        campaign_id="c1",
        child_id=str(uuid.uuid4()),
        outcome="enrolled_local",
        hukou_school_district=district,
        resolved_on=dt.date(2026, 10, 12),
        on_time=on_time,
        due_date=due,
    )


async def test_a_resolution_before_the_tasks_opening_keeps_the_late_opening_from_lapsing(
    start_service, event_publisher
):
    """The opening (ChildUnaccounted) was dead-lettered and the resolution arrived first: a met deadline
    is kept for the district, so the replayed opening is stale and nothing lapses in the sweep (before,
    the resolution recorded nothing, the replay opened a deadline and the sweep lapsed it: a lapse
    notified and scored for a task already resolved)."""
    svc = await start_notify(start_service)
    publish = Publisher(svc, event_publisher)
    task = str(uuid.uuid4())
    await publish(
        _resolved_by(task, DISTRICT_A, on_time=True), task_id=task, sequence=3, day=dt.date(2026, 10, 12)
    )
    met = {DISTRICT_A: ("met", DUE, dt.date(2026, 10, 12), True)}
    assert await _task_deadlines(svc, task) == met
    await publish(unaccounted(task), task_id=task, sequence=1, day=dt.date(2026, 9, 30))  # the replay
    await _sweep(svc, dt.date(2026, 11, 9))
    assert await _task_deadlines(svc, task) == met


async def test_a_resolution_by_the_district_the_task_moved_to_is_not_credited_to_the_one_it_left(
    start_service, event_publisher
):
    """The task opened in district A moved to B (that ChildUnaccounted dead-lettered) and B resolved it:
    A's open deadline is cancelled, B's is kept met; the replayed move is stale (before, A's deadline was
    met on time for B's work and B had none)."""
    svc = await start_notify(start_service)
    publish = Publisher(svc, event_publisher)
    task = str(uuid.uuid4())
    await publish(unaccounted(task), task_id=task, sequence=1, day=dt.date(2026, 9, 30))
    await publish(
        _resolved_by(task, DISTRICT_B, on_time=True), task_id=task, sequence=4, day=dt.date(2026, 10, 14)
    )
    expected = {
        DISTRICT_A: ("cancelled", DUE, dt.date(2026, 10, 14), None),
        DISTRICT_B: ("met", DUE, dt.date(2026, 10, 14), True),
    }
    assert await _task_deadlines(svc, task) == expected
    await publish(unaccounted(task, DISTRICT_B), task_id=task, sequence=2, day=dt.date(2026, 10, 12))
    await _sweep(svc, dt.date(2026, 11, 9))
    assert await _task_deadlines(svc, task) == expected
