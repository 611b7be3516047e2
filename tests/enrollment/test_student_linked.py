"""A 学籍 registered before its child was known tells casework when it is linked (StudentLinked).

End to end through real NATS: enrollment and casework run, the registry's child snapshot is published
on the registry's stream. A dropout of the unlinked record opens a case without a child id; the later
snapshot links the record, and the case and casework's student read model learn the child id.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, text

from baoxue.contracts.enrollment import DropoutSuspected
from baoxue.contracts.registry import ChildRegistered, ChildUpdated
from baoxue.testing.plugin import eventually
from casework.cases.models import Case
from casework.readmodels.models import StudentRecord as CaseworkStudent
from tests.enrollment.conftest import (
    DISTRICT_A,
    SCHOOL_A,
    TOWN_A,
    enroll,
    make_id,
    outbox_events,
    start,
)


async def _cases_of(casework, student_id: str) -> list[Case]:
    async with casework.ctx.db.transaction() as s:
        return list((await s.execute(select(Case).where(Case.student_id == student_id))).scalars())


async def _read_model(casework, student_id: str) -> CaseworkStudent | None:
    async with casework.ctx.db.transaction() as s:
        return await s.get(CaseworkStudent, student_id)


async def test_a_later_link_fills_the_child_id_of_the_case_opened_before(
    start_service, tokens, event_publisher
):
    enrollment = await start(start_service)
    casework = await start_service("casework")
    await casework.wait_events_ready()
    h = tokens.headers("school", SCHOOL_A)

    id_number = make_id()
    registered = await enroll(enrollment, tokens, id_number)
    assert registered.status_code == 201, registered.text
    sid = registered.json()["id"]
    assert registered.json()["child_id"] is None  # the registry has not delivered the child yet
    out = await enrollment.client.post(
        f"/v1/students/{sid}/dropout", headers=h, json={"on": "2026-10-08", "reason": "learning_weariness"}
    )
    assert out.status_code == 200, out.text

    async def case_opened() -> bool:
        model = await _read_model(casework, sid)
        return (
            len(await _cases_of(casework, sid)) == 1 and model is not None and model.status == "dropped_out"
        )

    await eventually(case_opened)
    [case] = await _cases_of(casework, sid)
    assert case.child_id is None and case.opened_signal == "dropped_out_status"
    model = await _read_model(casework, sid)
    assert model is not None and model.child_id is None

    # The registry's snapshot arrives: enrollment links the record and says so.
    child_id = str(uuid.uuid4())
    blind = enrollment.ctx.blind_index.of(id_number)
    snapshot = dict(
        child_id=child_id,
        id_blind_index=blind,
        birth_date=dt.date(2016, 3, 1),
        hukou_town=TOWN_A,
        hukou_school_district=DISTRICT_A,
        status="active",
    )
    await event_publisher.publish(ChildRegistered(**snapshot), subject=child_id, sequence=1)  # type: ignore[arg-type]

    async def case_linked() -> bool:
        cases = await _cases_of(casework, sid)
        model = await _read_model(casework, sid)
        return (
            bool(cases) and cases[0].child_id == child_id and model is not None and model.child_id == child_id
        )

    await eventually(case_linked)
    [case] = await _cases_of(casework, sid)
    assert case.open_key is not None and case.state == "suspected"  # still the one open case
    model = await _read_model(casework, sid)
    assert model is not None and model.status == "dropped_out" and model.id_blind_index == blind

    read = (await enrollment.client.get(f"/v1/students/{sid}", headers=h)).json()
    assert read["child_id"] == child_id and read["version"] == 3  # registered, dropped out, linked
    [linked] = await outbox_events(enrollment, "student.linked")
    assert linked == {
        "student_id": sid,
        "child_id": child_id,
        "school_code": SCHOOL_A,
        "status": "dropped_out",
        "hukou_school_district": DISTRICT_A,
    }  # surrogate ids and codes only

    # A later snapshot of the same child links nothing new and publishes nothing.
    await event_publisher.publish(ChildUpdated(**snapshot), subject=child_id, sequence=2)  # type: ignore[arg-type]

    async def applied() -> bool:
        async with enrollment.ctx.db.transaction() as s:
            seq = (
                await s.execute(text("SELECT sequence FROM children WHERE child_id = :c"), {"c": child_id})
            ).scalar_one()
        return int(seq) == 2

    await eventually(applied)
    assert len(await outbox_events(enrollment, "student.linked")) == 1

    # A signal that knows the child only by its child id now joins the same case.
    await event_publisher.publish(
        DropoutSuspected(
            signal_id=f"verify-{child_id}",
            signal="verification_not_in_school",
            child_id=child_id,
            hukou_school_district=DISTRICT_A,
            detected_on=dt.date(2026, 10, 20),
        ),
        subject=child_id,
    )

    async def attached() -> bool:
        cases = await _cases_of(casework, sid)
        return cases[0].signal_count == 2

    await eventually(attached)
    async with casework.ctx.db.transaction() as s:
        assert len((await s.execute(select(Case).where(Case.child_id == child_id))).scalars().all()) == 1
