"""The children read model: upserts by child id, stale sequences ignored, rebuildable from the stream."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from baoxue.contracts.registry import ChildStatusChanged, ChildUpdated
from baoxue.testing.plugin import eventually
from tests.enrollment.conftest import (
    BUREAU,
    DISTRICT_A,
    DISTRICT_B,
    SCHOOL_A,
    TOWN_B,
    child_row,
    enroll,
    outbox_events,
    register_child,
    start,
)


async def test_snapshots_upsert_and_stale_sequences_are_ignored(start_service, event_publisher, tokens):
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    sid = (await enroll(svc, tokens, kid)).json()["id"]
    blind = svc.ctx.blind_index.of(kid.id_number)
    moved = ChildUpdated(
        child_id=kid.child_id,
        id_blind_index=blind,
        birth_date=kid.birth,
        hukou_town=TOWN_B,
        hukou_school_district=DISTRICT_B,
    )
    await event_publisher.publish(moved, subject=kid.child_id, sequence=3)
    stale = ChildUpdated(
        child_id=kid.child_id,
        id_blind_index=blind,
        birth_date=kid.birth,
        hukou_town="370406001",
        hukou_school_district=DISTRICT_A,
    )
    await event_publisher.publish(stale, subject=kid.child_id, sequence=2)
    await event_publisher.publish(
        ChildStatusChanged(
            child_id=kid.child_id,
            status="missing",
            previous_status="active",
            effective_date=dt.date(2026, 10, 1),
        ),
        subject=kid.child_id,
        sequence=4,
    )

    async def settled() -> bool:
        row = await child_row(svc, kid.child_id)
        return row is not None and row["sequence"] == 4

    await eventually(settled)
    await eventually(lambda: _applied(svc, 3))  # the stale event was consumed too
    row = await child_row(svc, kid.child_id)
    assert row["hukou_school_district"] == DISTRICT_B and row["status"] == "missing"
    # the student record follows the child's hukou district (case-role scope of the new district)
    r = await svc.client.get(f"/v1/students/{sid}", headers=tokens.headers("school_district", DISTRICT_B))
    assert r.status_code == 200 and r.json()["hukou_school_district"] == DISTRICT_B


async def _applied(svc, n: int) -> bool:
    async with svc.ctx.db.transaction() as s:
        return (await s.execute(text("SELECT count(*) FROM inbox"))).scalar_one() >= n


async def test_rebuild_replays_the_registry_stream(start_service, event_publisher, tokens):
    svc = await start(start_service)
    kids = [await register_child(svc, event_publisher) for _ in range(3)]
    assert (
        await svc.client.post(
            "/v1/admin/children-read-model/rebuild", headers=tokens.headers("school", SCHOOL_A)
        )
    ).status_code == 403
    r = await svc.client.post(
        "/v1/admin/children-read-model/rebuild", headers=tokens.headers("bureau", BUREAU)
    )
    assert r.status_code == 202 and r.json()["children_removed"] == 3

    async def rebuilt() -> bool:
        return all([await child_row(svc, k.child_id) is not None for k in kids])

    await eventually(rebuilt, timeout=20)
    async with svc.ctx.db.transaction() as s:
        assert (await s.execute(text("SELECT count(*) FROM children"))).scalar_one() == 3


async def test_a_deceased_child_closes_the_active_record(start_service, event_publisher, tokens):
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    sid = (await enroll(svc, tokens, kid)).json()["id"]
    await event_publisher.publish(
        ChildStatusChanged(
            child_id=kid.child_id,
            status="deceased",
            previous_status="active",
            effective_date=dt.date(2026, 10, 3),
        ),
        subject=kid.child_id,
        sequence=2,
    )

    async def closed() -> bool:
        r = await svc.client.get(f"/v1/students/{sid}", headers=tokens.headers("school", SCHOOL_A))
        return r.json()["status"] == "deceased"

    await eventually(closed)
    changes = await outbox_events(svc, "student.status_changed")
    assert [(c["previous_status"], c["status"], c["reason"]) for c in changes] == [
        ("enrolled", "deceased", "registry_deceased")
    ]


async def test_a_merged_record_keeps_its_survivor_through_later_snapshots(start_service, event_publisher):
    """A merge is ChildStatusChanged (duplicate, merged_into) followed by the record's snapshot, which
    does not carry merged_into: the snapshot keeps the survivor; a snapshot that is no longer a duplicate
    (the merge undone) names none."""
    svc = await start(start_service)
    kid = await register_child(svc, event_publisher)
    survivor = await register_child(svc, event_publisher)
    merged = ChildStatusChanged(
        child_id=kid.child_id,
        status="duplicate",
        previous_status="active",
        effective_date=dt.date(2026, 10, 1),
        merged_into=survivor.child_id,
    )
    await event_publisher.publish(merged, subject=kid.child_id, sequence=3)
    snapshot = {"child_id": kid.child_id, "birth_date": kid.birth, "hukou_school_district": DISTRICT_A}
    await event_publisher.publish(
        ChildUpdated(**snapshot, status="duplicate"), subject=kid.child_id, sequence=4
    )

    async def at(sequence: int) -> bool:
        row = await child_row(svc, kid.child_id)
        return row is not None and row["sequence"] == sequence

    await eventually(lambda: at(4))
    row = await child_row(svc, kid.child_id)
    assert (row["status"], row["merged_into"]) == ("duplicate", survivor.child_id)

    await event_publisher.publish(ChildUpdated(**snapshot, status="active"), subject=kid.child_id, sequence=5)
    await eventually(lambda: at(5))
    row = await child_row(svc, kid.child_id)
    assert (row["status"], row["merged_into"]) == ("active", None)
