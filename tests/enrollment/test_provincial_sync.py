"""The provincial platform adapter against the simulator over real HTTP: batches, crashes, exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import text

from baoxue.auth.principal import Principal
from baoxue.errors import Problem
from baoxue.fakes.provincial_platform import PlatformState, create_app
from baoxue.testing.plugin import eventually
from enrollment.provincial import adapter
from enrollment.students import transitions
from tests.enrollment.conftest import BUREAU, DPF, SCHOOL_A, enroll, make_id, register_child, start


@pytest_asyncio.fixture
async def platform() -> AsyncIterator[tuple[str, PlatformState]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    state = PlatformState()
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _started(server))
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def _started(server: uvicorn.Server) -> bool:
    return server.started


async def seed(url: str, n: int, school: str = "32030200101001") -> list[str]:
    ids = [make_id() for _ in range(n)]
    records = [
        {
            "record_id": f"R{i:05d}",
            "student_number": "G" + id_number,
            "id_number": id_number,
            "school_code": school,
            "province_code": "32",
        }
        for i, id_number in enumerate(ids)
    ]
    async with httpx.AsyncClient(base_url=url) as c:
        assert (await c.post("/_control/records", json=records)).status_code == 200
    return ids


async def control(url: str, **rule) -> None:
    async with httpx.AsyncClient(base_url=url) as c:
        assert (await c.post("/_control/failures", json=rule)).status_code == 200


async def counts(svc) -> tuple[int, int, int]:
    async with svc.ctx.db.transaction() as s:
        records = (await s.execute(text("SELECT count(*) FROM provincial_records"))).scalar_one()
        batches = (
            await s.execute(
                text(
                    "SELECT count(*), coalesce(sum(records), 0) FROM provincial_sync_batches "
                    "WHERE direction = 'import'"
                )
            )
        ).one()
    return records, batches[0], batches[1]


async def test_import_cancelled_while_a_page_is_in_flight_resumes_and_applies_each_record_once(
    start_service, platform
):
    """Cancelled while the platform is still answering the third page (before anything of it is
    applied); the crash inside a batch's transaction is the next test."""
    url, _state = platform
    svc = await start(start_service, provincial_base_url=url, provincial_batch_size=10)
    await seed(url, 35)
    await control(url, operation="export", delay_seconds=0.3)
    sync = asyncio.create_task(adapter.import_records(svc.ctx))

    async def two_batches_in() -> bool:
        return (await counts(svc))[1] >= 2

    await eventually(two_batches_in, timeout=20)
    sync.cancel()  # killed while the third page is in flight (the platform delays its answer)
    with pytest.raises(asyncio.CancelledError):
        await sync
    partial = await counts(svc)
    assert partial[0] == partial[2] < 35
    await control(url, operation="export", delay_seconds=0.0)
    result = await adapter.import_records(svc.ctx)
    assert result["records_applied"] == 35 - partial[2]
    assert await counts(svc) == (35, 4, 35)  # every record exactly once, 4 batches of 10
    again = await adapter.import_records(svc.ctx)  # a full re-walk applies nothing twice
    assert again["records_applied"] == 0 and await counts(svc) == (35, 4, 35)


async def test_import_crashing_inside_a_batch_after_its_checkpoint_rolls_the_batch_back(
    start_service, platform, monkeypatch
):
    """The process fails inside ``_apply_import_batch`` after the third batch's checkpoint row was
    inserted (while its records are prepared): the batch's transaction rolls back checkpoint and records
    together, and the re-run applies that batch and the rest, each record once."""
    url, _state = platform
    svc = await start(start_service, provincial_base_url=url, provincial_batch_size=10)
    await seed(url, 35)
    calls = 0
    normalise = adapter.normalise_id_number

    def crashing(id_number: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 21:  # the first record of the third batch: its checkpoint is already inserted
            raise RuntimeError("process killed")
        return normalise(id_number)

    monkeypatch.setattr(adapter, "normalise_id_number", crashing)
    with pytest.raises(RuntimeError, match="process killed"):
        await adapter.import_records(svc.ctx)
    assert await counts(svc) == (20, 2, 20)
    assert await checkpoints(svc) == [("10", 10), ("20", 10)]

    monkeypatch.setattr(adapter, "normalise_id_number", normalise)
    result = await adapter.import_records(svc.ctx)
    assert result == {"batches_applied": 2, "batches_skipped": 0, "records_applied": 15}
    assert await counts(svc) == (35, 4, 35)
    assert await checkpoints(svc) == [("10", 10), ("20", 10), ("30", 10), (None, 5)]
    async with svc.ctx.db.transaction() as s:
        distinct = (
            await s.execute(text("SELECT count(DISTINCT platform_record_id) FROM provincial_records"))
        ).scalar_one()
    assert distinct == 35


async def checkpoints(svc) -> list[tuple[str | None, int]]:
    """The import checkpoints in the order they were applied: (cursor after the batch, records)."""
    async with svc.ctx.db.transaction() as s:
        rows = await s.execute(
            text(
                "SELECT cursor_after, records FROM provincial_sync_batches WHERE direction = 'import' "
                "ORDER BY applied_at"
            )
        )
        return [(c, int(n)) for c, n in rows.all()]


async def test_import_survives_platform_outage_and_confirms_enrolled_elsewhere(
    start_service, platform, event_publisher, tokens
):
    url, _state = platform
    svc = await start(start_service, provincial_base_url=url, provincial_batch_size=10)
    await seed(url, 12)
    kid = await register_child(svc, event_publisher)
    async with httpx.AsyncClient(base_url=url) as c:
        await c.post(
            "/_control/records",
            json=[
                {
                    "record_id": "R-kid",
                    "student_number": "G" + kid.id_number,
                    "id_number": kid.id_number,
                    "school_code": "32030200101001",
                    "province_code": "32",
                }
            ],
        )
    await control(url, operation="export", fail_next=1)
    with pytest.raises(Problem):
        await adapter.import_records(svc.ctx)
    assert (await counts(svc))[0] == 0
    await adapter.import_records(svc.ctx)
    assert await counts(svc) == (13, 2, 13)

    bureau = tokens.headers("bureau", BUREAU)
    campaign = (
        await svc.client.post(
            "/v1/campaigns",
            headers=bureau,
            json={
                "kind": "september_verification",
                "year": 2026,
                "as_of": "2026-09-30",
                "deadline": "2026-10-31",
            },
        )
    ).json()
    await svc.client.post(f"/v1/campaigns/{campaign['id']}/runs", headers=bureau)

    async def task_exists() -> bool:
        return bool((await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"])

    await eventually(task_exists, timeout=20)
    task = (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"][0]
    district = tokens.headers("school_district", kid.district)
    await svc.client.post(
        f"/v1/verification-tasks/{task['id']}/resolution",
        headers=district,
        json={
            "outcome": "enrolled_elsewhere",
            "evidence": "省平台",
            "enrolling_org": "32",
            "on": "2026-10-09",
        },
    )
    ok = await svc.client.post(
        f"/v1/verification-tasks/{task['id']}/confirmation",
        headers=district,
        json={"source": "provincial_platform", "on": "2026-10-09"},
    )
    assert ok.status_code == 200 and ok.json()["state"] == "resolved"


async def test_push_is_idempotent_by_batch_id_after_a_lost_acknowledgement(start_service, platform, tokens):
    url, state = platform
    svc = await start(start_service, provincial_base_url=url)
    sid = (await enroll(svc, tokens, make_id())).json()["id"]
    await svc.client.post(
        f"/v1/students/{sid}/annotations",
        headers=tokens.headers("dept_dpf", DPF),
        json={
            "assessing_body": "区残联",
            "evidence_ref": "a/1",
            "assessed_on": "2026-09-10",
            "reassess_on": "2027-09-10",
        },
    )
    await svc.client.post(
        f"/v1/students/{sid}/dropout",
        headers=tokens.headers("school", SCHOOL_A),
        json={"on": "2026-10-08", "reason": "illness"},
    )
    await control(url, operation="push", delay_seconds=0.5)
    push = asyncio.create_task(adapter.push_changes(svc.ctx))
    await eventually(lambda: _received(state), timeout=10)  # the platform has it; our side never hears back
    push.cancel()
    with pytest.raises(asyncio.CancelledError):
        await push
    await control(url, operation="push", delay_seconds=0.0)
    result = await adapter.push_changes(svc.ctx)
    assert result == {"batches": 1, "items": 2, "duplicates": 1}
    assert len(state.pushes) == 1
    items = next(iter(state.pushes.values()))
    assert [i.status for i in items if i.status] == ["dropped_out"]
    assert [i.annotation["assessing_body"] for i in items if i.annotation] == ["区残联"]
    assert await adapter.push_changes(svc.ctx) == {"batches": 0, "items": 0, "duplicates": 0}


async def _received(state: PlatformState) -> bool:
    return bool(state.pushes)


async def test_push_pages_through_a_batch_registration(start_service, platform, tokens):
    """A batch registration of 12 records (one ``updated_at`` for all) pushed in pages of 5: each page is
    the first pending records by id and is marked once acknowledged, so every record is sent once."""
    url, state = platform
    svc = await start(start_service, provincial_base_url=url, provincial_batch_size=5)
    numbers = ["G" + make_id() for _ in range(12)]
    records = [
        {"student_number": n, "id_number": n[1:], "school_code": SCHOOL_A, "grade": 3} for n in numbers
    ]
    r = await svc.client.post(
        "/v1/students/batch", headers=tokens.headers("school", SCHOOL_A), json={"records": records}
    )
    assert r.status_code == 200 and r.json()["created"] == 12, r.text
    assert await adapter.push_changes(svc.ctx) == {"batches": 3, "items": 12, "duplicates": 0}
    pushed = [i.student_number for items in state.pushes.values() for i in items]
    assert sorted(pushed) == sorted(numbers)
    assert await adapter.push_changes(svc.ctx) == {"batches": 0, "items": 0, "duplicates": 0}


async def pushed(state: PlatformState) -> list[tuple[str, str | None]]:
    """(student number, status) of every status item the platform received, in the order received."""
    return [(i.student_number, i.status) for items in state.pushes.values() for i in items if i.status]


async def test_a_change_committed_after_a_later_one_was_pushed_is_still_pushed(
    start_service, platform, tokens
):
    """A slow transaction changes X first (its ``updated_at`` is the earlier one) and commits after Y's
    change, made and pushed meanwhile, was acknowledged: X is pushed all the same. A checkpoint of the last
    pushed ``(updated_at, id)`` lost X for good; the record's pushed version does not."""
    url, state = platform
    svc = await start(start_service, provincial_base_url=url)
    if svc.ctx.db.dialect != "postgresql":
        pytest.skip("SQLite serialises writers: a second writer cannot commit while the first is open")
    x_number, y_number = make_id(), make_id()
    x = (await enroll(svc, tokens, x_number)).json()["id"]
    y = (await enroll(svc, tokens, y_number)).json()["id"]
    assert await adapter.push_changes(svc.ctx) == {"batches": 1, "items": 2, "duplicates": 0}
    school = Principal(subject="t", roles=frozenset({"school"}), org=SCHOOL_A, scope=SCHOOL_A)
    async with svc.ctx.db.transaction() as slow:
        await transitions.drop_out(
            session=slow, ctx=svc.ctx, principal=school, student_id=x, on=dt.date(2026, 10, 8), reason=None
        )
        r = await svc.client.post(
            f"/v1/students/{y}/dropout", headers=tokens.headers("school", SCHOOL_A), json={"on": "2026-10-08"}
        )
        assert r.status_code == 200, r.text
        assert (await adapter.push_changes(svc.ctx))["items"] == 1  # Y's dropout; X's is not committed
    assert await adapter.push_changes(svc.ctx) == {"batches": 1, "items": 1, "duplicates": 0}
    assert (await pushed(state))[2:] == [("G" + y_number, "dropped_out"), ("G" + x_number, "dropped_out")]
    assert await adapter.push_changes(svc.ctx) == {"batches": 0, "items": 0, "duplicates": 0}


async def test_a_change_stamped_before_the_last_pushed_one_is_still_pushed(start_service, platform, tokens):
    """What the slow transaction above leaves, on either database: X's change carries an ``updated_at``
    earlier than the last record pushed, and is still pushed (the push looks at versions, not clocks)."""
    url, state = platform
    svc = await start(start_service, provincial_base_url=url)
    x_number, y_number = make_id(), make_id()
    x = (await enroll(svc, tokens, x_number)).json()["id"]
    y = (await enroll(svc, tokens, y_number)).json()["id"]
    school = tokens.headers("school", SCHOOL_A)
    await svc.client.post(f"/v1/students/{y}/dropout", headers=school, json={"on": "2026-10-08"})
    assert await adapter.push_changes(svc.ctx) == {"batches": 1, "items": 2, "duplicates": 0}
    await svc.client.post(f"/v1/students/{x}/dropout", headers=school, json={"on": "2026-10-08"})
    async with svc.ctx.db.transaction() as s:
        await s.execute(
            text("UPDATE student_records SET updated_at = :at WHERE id = :x"),
            {"at": dt.datetime(2026, 10, 8, 0, 0, tzinfo=dt.UTC), "x": x},
        )
    assert await adapter.push_changes(svc.ctx) == {"batches": 1, "items": 1, "duplicates": 0}
    assert (await pushed(state))[-1] == ("G" + x_number, "dropped_out")
    assert await adapter.push_changes(svc.ctx) == {"batches": 0, "items": 0, "duplicates": 0}


async def test_a_record_changed_while_its_batch_is_in_flight_stays_pending(start_service, platform, tokens):
    """The platform accepts a batch with Y enrolled while Y drops out here: marking the batch as pushed
    leaves Y pending (only the version sent is marked), so its dropout is pushed next."""
    url, state = platform
    svc = await start(start_service, provincial_base_url=url)
    y_number = make_id()
    y = (await enroll(svc, tokens, y_number)).json()["id"]
    await control(url, operation="push", delay_seconds=0.5)
    push = asyncio.create_task(adapter.push_changes(svc.ctx))
    await eventually(lambda: _received(state), timeout=10)  # applied by the platform, not acknowledged yet
    r = await svc.client.post(
        f"/v1/students/{y}/dropout", headers=tokens.headers("school", SCHOOL_A), json={"on": "2026-10-08"}
    )
    assert r.status_code == 200, r.text
    await control(url, operation="push", delay_seconds=0.0)
    assert await push == {"batches": 2, "items": 2, "duplicates": 0}
    assert await pushed(state) == [("G" + y_number, "enrolled"), ("G" + y_number, "dropped_out")]
    assert await adapter.push_changes(svc.ctx) == {"batches": 0, "items": 0, "duplicates": 0}
