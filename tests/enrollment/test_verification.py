"""Verification campaigns: set-based classification, tasks, confirmation, idempotent re-runs, frozen result."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import select, text

from baoxue.contracts.registry import ChildRegistered, ChildStatusChanged, ChildUpdated, FeedCompleted
from baoxue.events.consumer import ReceivedEvent
from baoxue.events.envelope import Envelope
from baoxue.testing.plugin import eventually
from enrollment.children.handlers import make_batch_handlers, make_handlers
from enrollment.verification import classify
from enrollment.verification.classify import birth_bounds
from tests.enrollment.conftest import (
    BUREAU,
    DISTRICT_A,
    DISTRICT_B,
    DPF,
    SCHOOL_A,
    SCHOOL_B,
    TOWN_A,
    TOWN_B,
    Kid,
    child_row,
    enroll,
    home_delivery,
    make_id,
    outbox_events,
    register_child,
    start,
)

CAMPAIGN = {"kind": "september_verification", "year": 2026, "as_of": "2026-09-30", "deadline": "2026-10-31"}


async def run_and_wait(svc, tokens, campaign_id: str) -> dict:
    r = await svc.client.post(f"/v1/campaigns/{campaign_id}/runs", headers=tokens.headers("bureau", BUREAU))
    assert r.status_code == 202, r.text
    assert r.headers["Location"] == f"/v1/jobs/{r.json()['job_id']}"
    job: dict = {}

    async def done() -> bool:
        nonlocal job
        job = (await svc.client.get(r.headers["Location"], headers=tokens.headers("bureau", BUREAU))).json()
        return job["status"] in ("succeeded", "failed")

    await eventually(done, timeout=20)
    assert job["status"] == "succeeded", job
    return job


async def one_unaccounted_task(svc, tokens, event_publisher) -> dict:
    """One registered child with no student record, a campaign and its run: the child's one task."""
    bureau = tokens.headers("bureau", BUREAU)
    await register_child(svc, event_publisher)
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    await run_and_wait(svc, tokens, campaign["id"])
    [task] = (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    return task


async def stored_results(svc, campaign_id: str) -> tuple[dict[str, tuple[int, int]], int | None]:
    """The campaign's stored results ({outcome: (children, run)}) and, on PostgreSQL, its partitions."""
    async with svc.ctx.db.transaction() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT outcome, count(*), max(run) FROM verification_results WHERE campaign_id = :c "
                    "GROUP BY outcome"
                ),
                {"c": campaign_id},
            )
        ).all()
        partitions = None
        if svc.ctx.db.dialect == "postgresql":
            partitions = (
                await s.execute(
                    text(
                        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'verification_results'::regclass "
                        "AND pg_get_expr(c.relpartbound, c.oid) = :bound"
                    ),
                    {"bound": f"FOR VALUES IN ('{campaign_id}')"},
                )
            ).scalar_one()
    return {str(o): (int(n), int(r)) for o, n, r in rows}, partitions


def test_scope_is_six_to_fourteen_full_years_on_the_cutoff():
    assert birth_bounds(dt.date(2026, 8, 31)) == (dt.date(2011, 9, 1), dt.date(2020, 8, 31))
    assert birth_bounds(dt.date(2028, 2, 29)) == (
        dt.date(2013, 2, 28) + dt.timedelta(days=1),
        dt.date(2022, 2, 28),
    )


@pytest.mark.usefixtures("in_september")
async def test_campaign_classifies_every_child_and_tasks_the_unexplained(
    start_service, event_publisher, tokens
):
    svc = await start(start_service)
    bureau = tokens.headers("bureau", BUREAU)
    enrolled = await register_child(svc, event_publisher)
    deferred = await register_child(svc, event_publisher)
    expired_deferral = await register_child(svc, event_publisher)
    dead = await register_child(svc, event_publisher, status="deceased")
    moved = await register_child(svc, event_publisher)
    lost = await register_child(svc, event_publisher, district=DISTRICT_B, town=TOWN_B)
    too_young = await register_child(svc, event_publisher, birth=dt.date(2020, 9, 1))
    await event_publisher.publish(
        ChildStatusChanged(
            child_id=moved.child_id,
            status="moved_out",
            previous_status="active",
            effective_date=dt.date(2026, 7, 1),
        ),
        subject=moved.child_id,
        sequence=2,
    )

    async def moved_applied() -> bool:
        return (await child_row(svc, moved.child_id))["status"] == "moved_out"

    await eventually(moved_applied)
    assert (await enroll(svc, tokens, enrolled)).status_code == 201
    for kid, until in ((deferred, "2027-08-31"), (expired_deferral, "2026-09-15")):
        app = await svc.client.post(
            "/v1/deferral-applications",
            headers=tokens.headers("school_district", DISTRICT_A),
            json={
                "child_id": kid.child_id,
                "kind": "deferral",
                "reason": "illness",
                "evidence": ["medical/1"],
                "filed_on": "2026-09-02",
            },
        )
        assert app.status_code == 201, app.text
        dec = await svc.client.post(
            f"/v1/deferral-applications/{app.json()['id']}/decision",
            headers=bureau,
            json={"approve": True, "on": "2026-09-05", "valid_from": "2026-09-01", "valid_until": until},
        )
        assert dec.status_code == 200, dec.text

    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    job = await run_and_wait(svc, tokens, campaign["id"])
    counts = job["counts"]
    assert counts["children_in_scope"] == 6 and counts["tasks_created"] == 2
    assert counts["by_outcome"] == {
        "enrolled_local": 1,
        "deferred": 1,
        "deceased": 1,
        "moved_out": 1,
        "unaccounted": 2,
    }

    tasks = (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    assert {t["child_id"] for t in tasks} == {expired_deferral.child_id, lost.child_id}
    assert all(t["due_on"] == "2026-10-31" for t in tasks)
    # each district sees only the tasks of its hukou area; the child of another district's area gets 404-free absence
    mine = (
        await svc.client.get("/v1/verification-tasks", headers=tokens.headers("school_district", DISTRICT_B))
    ).json()
    assert [t["child_id"] for t in mine["items"]] == [lost.child_id]
    unaccounted = await outbox_events(svc, "child_unaccounted")
    assert sorted(e["child_id"] for e in unaccounted) == sorted([expired_deferral.child_id, lost.child_id])
    assert not {too_young.child_id, dead.child_id, moved.child_id} & {e["child_id"] for e in unaccounted}

    # idempotent: a re-run with nothing new creates no task and publishes nothing
    again = await run_and_wait(svc, tokens, campaign["id"])
    assert again["counts"]["tasks_created"] == 0 and again["counts"]["events_published"] == 0
    # incremental: the child is now enrolled → the open task is superseded
    assert (await enroll(svc, tokens, expired_deferral, school=SCHOOL_A)).status_code == 201
    third = await run_and_wait(svc, tokens, campaign["id"])
    assert third["counts"]["tasks_superseded"] == 1 and third["counts"]["by_outcome"]["enrolled_local"] == 2
    # the stored results are the last run's only (on PostgreSQL: one partition per campaign, swapped in)
    stored, partitions = await stored_results(svc, campaign["id"])
    assert stored == {
        "enrolled_local": (2, 3),
        "deferred": (1, 3),
        "deceased": (1, 3),
        "moved_out": (1, 3),
        "unaccounted": (1, 3),
    }
    assert partitions in (None, 1)

    progress = (await svc.client.get(f"/v1/campaigns/{campaign['id']}/progress", headers=bureau)).json()
    by_district = {p["hukou_school_district"]: p for p in progress}
    assert by_district[DISTRICT_A]["in_scope"] == 5 and by_district[DISTRICT_A]["accounted"] == 5
    assert by_district[DISTRICT_B]["tasks_open"] == 1


async def test_enrolled_elsewhere_stays_open_until_confirmed_and_not_in_school_signals(
    start_service, event_publisher, tokens, server_day
):
    svc = await start(start_service)
    server_day(dt.date(2026, 10, 12))
    bureau = tokens.headers("bureau", BUREAU)
    away = await register_child(svc, event_publisher)
    out = await register_child(svc, event_publisher)
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    await run_and_wait(svc, tokens, campaign["id"])
    tasks = {
        t["child_id"]: t
        for t in (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    }
    district = tokens.headers("school_district", DISTRICT_A)

    r = await svc.client.post(
        f"/v1/verification-tasks/{tasks[away.child_id]['id']}/resolution",
        headers=district,
        json={
            "outcome": "enrolled_elsewhere",
            "evidence": "家长电话",
            "enrolling_org": SCHOOL_B,
            "on": "2026-10-10",
        },
    )
    assert r.status_code == 200 and r.json()["state"] == "awaiting_confirmation"
    # the platform has no record of the child: stays open
    platform = await svc.client.post(
        f"/v1/verification-tasks/{tasks[away.child_id]['id']}/confirmation",
        headers=district,
        json={"source": "provincial_platform", "on": "2026-10-11"},
    )
    assert platform.status_code == 409 and platform.json()["code"] == "confirmation_required"
    # another school cannot confirm; the enrolling school can
    other = await svc.client.post(
        f"/v1/verification-tasks/{tasks[away.child_id]['id']}/confirmation",
        headers=tokens.headers("school", SCHOOL_A),
        json={"source": "enrolling_org", "on": "2026-10-12"},
    )
    assert other.status_code == 404
    assert (
        await svc.client.get("/v1/verification-tasks?state=awaiting_confirmation", headers=bureau)
    ).json()["items"]
    ok = await svc.client.post(
        f"/v1/verification-tasks/{tasks[away.child_id]['id']}/confirmation",
        headers=tokens.headers("school", SCHOOL_B),
        json={"source": "enrolling_org", "on": "2026-10-12"},
    )
    assert ok.status_code == 200 and ok.json()["state"] == "resolved"

    server_day(dt.date(2026, 11, 5))  # after the campaign's deadline
    r = await svc.client.post(
        f"/v1/verification-tasks/{tasks[out.child_id]['id']}/resolution",
        headers=district,
        json={"outcome": "not_in_school", "evidence": "入户核实", "on": "2026-11-05"},
    )
    assert r.json()["state"] == "resolved"
    signals = await outbox_events(svc, "dropout_suspected")
    assert [(s["signal"], s["child_id"], s["hukou_school_district"]) for s in signals] == [
        ("verification_not_in_school", out.child_id, DISTRICT_A)
    ]
    resolved = {e["child_id"]: e for e in await outbox_events(svc, "task.resolved")}
    assert resolved[away.child_id]["on_time"] is True and resolved[out.child_id]["on_time"] is False

    frozen = await svc.client.post(f"/v1/campaigns/{campaign['id']}/result", headers=bureau)
    assert frozen.status_code == 200
    body = frozen.json()
    assert body["result_version"] == 1 and body["counts_by_outcome"] == {
        "enrolled_elsewhere": 1,
        "not_in_school": 1,
    }
    assert body["counts_by_town"] == {"370406001": {"enrolled_elsewhere": 1, "not_in_school": 1}}
    assert body["tasks_open"] == 0
    completed = await outbox_events(svc, "campaign.completed")
    assert completed[0]["result_version"] == 1
    assert (await svc.client.post(f"/v1/campaigns/{campaign['id']}/result", headers=bureau)).json()[
        "result_version"
    ] == 2


async def test_only_the_bureau_runs_campaigns(start_service, tokens):
    svc = await start(start_service)
    r = await svc.client.post(
        "/v1/campaigns", headers=tokens.headers("school_district", DISTRICT_A), json=CAMPAIGN
    )
    assert r.status_code == 403
    created = await svc.client.post("/v1/campaigns", headers=tokens.headers("bureau", BUREAU), json=CAMPAIGN)
    dup = await svc.client.post("/v1/campaigns", headers=tokens.headers("bureau", BUREAU), json=CAMPAIGN)
    assert created.status_code == 201 and dup.status_code == 409 and dup.json()["code"] == "campaign_exists"


async def test_a_new_feed_reruns_the_campaign_incrementally(start_service, event_publisher, tokens):
    svc = await start(start_service, campaign_refresh_seconds=0.2)
    bureau = tokens.headers("bureau", BUREAU)
    first = await register_child(svc, event_publisher)
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    await run_and_wait(svc, tokens, campaign["id"])
    newcomer = await register_child(svc, event_publisher)
    assert (await enroll(svc, tokens, first)).status_code == 201
    await event_publisher.publish(
        FeedCompleted(
            batch_id="b-2", department="dept_police", period="2026-09", rows_total=1, accepted=1, rejected=0
        ),
        subject="b-2",
    )

    async def rerun() -> bool:
        c = (await svc.client.get(f"/v1/campaigns/{campaign['id']}", headers=bureau)).json()
        tasks = (await svc.client.get("/v1/verification-tasks?state=open", headers=bureau)).json()["items"]
        return c["runs"] == 2 and [t["child_id"] for t in tasks] == [newcomer.child_id]

    await eventually(rerun, timeout=20)
    superseded = (await svc.client.get("/v1/verification-tasks?state=superseded", headers=bureau)).json()[
        "items"
    ]
    assert [t["child_id"] for t in superseded] == [first.child_id]


async def test_the_in_place_run_statement_keeps_the_tasks_it_does_not_change(
    start_service, event_publisher, tokens, monkeypatch
):
    """PostgreSQL's in-place path (a table not partitioned, schema before 0004): the same task changes as
    the swap. Its statement once passed its values as execution parameters, which SQLAlchemy took for SET
    clauses of the CTEs' UPDATEs (campaign_id, due_on) and then failed to bind."""
    svc = await start(start_service)
    if svc.ctx.db.dialect != "postgresql":
        pytest.skip("the in-place statement is PostgreSQL's")
    bureau = tokens.headers("bureau", BUREAU)
    lost = await register_child(svc, event_publisher)
    found = await register_child(svc, event_publisher)
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    first = await run_and_wait(svc, tokens, campaign["id"])  # swapped in: the campaign's partition exists
    assert first["counts"]["tasks_created"] == 2

    async def not_swapped(*_args: object, **_kwargs: object) -> None:
        return None

    monkeypatch.setattr(classify, "classify_and_swap_postgresql", not_swapped)
    again = await run_and_wait(svc, tokens, campaign["id"])
    assert again["counts"]["tasks_created"] == 0 and again["counts"]["events_published"] == 0
    assert again["counts"]["by_outcome"] == {"unaccounted": 2}
    assert (await enroll(svc, tokens, found)).status_code == 201
    third = await run_and_wait(svc, tokens, campaign["id"])
    assert third["counts"]["tasks_superseded"] == 1
    assert third["counts"]["by_outcome"] == {"enrolled_local": 1, "unaccounted": 1}
    async with svc.ctx.db.transaction() as s:
        tasks = (
            await s.execute(
                text(
                    "SELECT child_id, campaign_id, due_on, state, version FROM verification_tasks ORDER BY state"
                )
            )
        ).all()
    assert [tuple(t) for t in tasks] == [
        (lost.child_id, campaign["id"], dt.date(2026, 10, 31), "open", 1),
        (found.child_id, campaign["id"], dt.date(2026, 10, 31), "superseded", 2),
    ]
    stored, partitions = await stored_results(svc, campaign["id"])
    assert stored == {"enrolled_local": (1, 3), "unaccounted": (1, 3)} and partitions == 1


async def test_the_frozen_result_counts_a_resolved_task_only_for_a_child_still_unaccounted(
    start_service, event_publisher, tokens
):
    """A task resolved 'not in school' whose child the latest run explains (enrolled since) counts as the
    run says, in the job's counts, the frozen result and CampaignCompleted alike."""
    svc = await start(start_service)
    bureau = tokens.headers("bureau", BUREAU)
    back = await register_child(svc, event_publisher)
    await register_child(svc, event_publisher)  # stays out of school
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    await run_and_wait(svc, tokens, campaign["id"])
    tasks = (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    for task in tasks:
        r = await svc.client.post(
            f"/v1/verification-tasks/{task['id']}/resolution",
            headers=tokens.headers("school_district", DISTRICT_A),
            json={"outcome": "not_in_school", "evidence": "入户核实", "on": "2026-10-09"},
        )
        assert r.status_code == 200, r.text
    assert (await enroll(svc, tokens, back)).status_code == 201
    job = await run_and_wait(svc, tokens, campaign["id"])
    expected = {"enrolled_local": 1, "not_in_school": 1}
    assert job["counts"]["by_outcome"] == expected
    frozen = (await svc.client.post(f"/v1/campaigns/{campaign['id']}/result", headers=bureau)).json()
    assert frozen["counts_by_outcome"] == expected and frozen["children_in_scope"] == 2
    assert frozen["counts_by_town"] == {back.town: expected}
    assert frozen["counts_by_town_district"] == [
        {"hukou_town": back.town, "hukou_school_district": DISTRICT_A, "counts": expected}
    ]
    [completed] = await outbox_events(svc, "campaign.completed")
    assert completed["counts_by_outcome"] == expected


async def test_the_resolving_side_cannot_confirm_its_own_enrolled_elsewhere(
    start_service, event_publisher, tokens
):
    """'Enrolled elsewhere' is confirmed by the other side: the resolver cannot name an enrolling school of
    its own area, and nobody covering the task's school district confirms as the enrolling organisation."""
    svc = await start(start_service)
    bureau, district = tokens.headers("bureau", BUREAU), tokens.headers("school_district", DISTRICT_A)
    task = await one_unaccounted_task(svc, tokens, event_publisher)
    url = f"/v1/verification-tasks/{task['id']}"

    def elsewhere(org: str) -> dict[str, str]:
        return {
            "outcome": "enrolled_elsewhere",
            "evidence": "家长电话",
            "enrolling_org": org,
            "on": "2026-10-10",
        }

    for who, org in ((district, SCHOOL_A), (district, DISTRICT_A), (bureau, SCHOOL_B)):
        refused = await svc.client.post(f"{url}/resolution", headers=who, json=elsewhere(org))
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "enrolling_org_inside_own_area"
        assert refused.json()["errors"][0]["field"] == "enrolling_org"
    r = await svc.client.post(f"{url}/resolution", headers=district, json=elsewhere(SCHOOL_B))
    assert r.status_code == 200 and r.json()["state"] == "awaiting_confirmation"

    confirm = {"source": "enrolling_org", "on": "2026-10-12"}
    by_bureau = await svc.client.post(f"{url}/confirmation", headers=bureau, json=confirm)
    assert by_bureau.status_code == 403 and by_bureau.json()["code"] == "confirmation_by_own_side"
    # a task left awaiting confirmation with an enrolling school of the district's own area (named before
    # the resolution refused it): the district cannot confirm it itself
    async with svc.ctx.db.transaction() as s:
        await s.execute(
            text("UPDATE verification_tasks SET enrolling_org = :o WHERE id = :t"),
            {"o": SCHOOL_A, "t": task["id"]},
        )
    by_district = await svc.client.post(f"{url}/confirmation", headers=district, json=confirm)
    assert by_district.status_code == 403 and by_district.json()["code"] == "confirmation_by_own_side"
    state = (
        await svc.client.get(f"/v1/verification-tasks?campaign_id={task['campaign_id']}", headers=bureau)
    ).json()
    assert [t["state"] for t in state["items"]] == ["awaiting_confirmation"]
    by_school = await svc.client.post(
        f"{url}/confirmation", headers=tokens.headers("school", SCHOOL_A), json=confirm
    )
    assert by_school.status_code == 200 and by_school.json()["state"] == "resolved"


async def test_the_platform_confirms_only_with_a_record_outside_the_district_at_the_enrolling_org(
    start_service, event_publisher, tokens
):
    svc = await start(start_service)
    bureau, district = tokens.headers("bureau", BUREAU), tokens.headers("school_district", DISTRICT_A)
    away = await register_child(svc, event_publisher)
    near = await register_child(svc, event_publisher)
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    await run_and_wait(svc, tokens, campaign["id"])
    tasks = {
        t["child_id"]: t["id"]
        for t in (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    }

    async def platform_shows(kid, record_id: str, school: str) -> None:
        async with svc.ctx.db.transaction() as s:
            await s.execute(
                text(
                    "INSERT INTO provincial_records (platform_record_id, id_blind_index, school_code, "
                    "province_code, status, batch_id) VALUES (:r, :b, :s, :p, 'enrolled', 'b-1')"
                ),
                {"r": record_id, "b": svc.ctx.blind_index.of(kid.id_number), "s": school, "p": school[:2]},
            )

    async def confirm(kid) -> object:
        return await svc.client.post(
            f"/v1/verification-tasks/{tasks[kid.child_id]}/confirmation",
            headers=district,
            json={"source": "provincial_platform", "on": "2026-10-12"},
        )

    for kid, org in ((away, "32"), (near, SCHOOL_B)):
        r = await svc.client.post(
            f"/v1/verification-tasks/{tasks[kid.child_id]}/resolution",
            headers=district,
            json={
                "outcome": "enrolled_elsewhere",
                "evidence": "家长电话",
                "enrolling_org": org,
                "on": "2026-10-10",
            },
        )
        assert r.status_code == 200, r.text
    # records of the child inside the district, or in a province other than the one named, confirm nothing
    await platform_shows(away, "P-1", SCHOOL_B)
    await platform_shows(away, "P-2", "33010200101001")
    refused = await confirm(away)
    assert refused.status_code == 409 and refused.json()["code"] == "confirmation_required"
    await platform_shows(away, "P-3", "32030200101001")
    ok = await confirm(away)
    assert ok.status_code == 200 and ok.json()["state"] == "resolved"
    # an enrolling school inside the district confirms itself; the platform's record of it does not
    await platform_shows(near, "P-4", SCHOOL_B)
    inside = await confirm(near)
    assert inside.status_code == 409 and inside.json()["code"] == "confirmation_required"
    by_school = await svc.client.post(
        f"/v1/verification-tasks/{tasks[near.child_id]}/confirmation",
        headers=tokens.headers("school", SCHOOL_B),
        json={"source": "enrolling_org", "on": "2026-10-12"},
    )
    assert by_school.status_code == 200


async def test_every_frozen_result_version_is_kept_and_served(start_service, event_publisher, tokens):
    """A freeze adds a version; GET /result answers the latest, ``?version=N`` any earlier one (the figures
    a bulletin was built from), a version never frozen is a 404 problem."""
    svc = await start(start_service)
    bureau = tokens.headers("bureau", BUREAU)
    kid = await register_child(svc, event_publisher)
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    url = f"/v1/campaigns/{campaign['id']}/result"
    never = await svc.client.get(url, headers=bureau)
    assert never.status_code == 404 and never.json()["code"] == "campaign_not_frozen"
    await run_and_wait(svc, tokens, campaign["id"])
    first = (await svc.client.post(url, headers=bureau)).json()
    assert first["result_version"] == 1 and first["counts_by_outcome"] == {"unaccounted": 1}
    assert (await enroll(svc, tokens, kid)).status_code == 201
    await run_and_wait(svc, tokens, campaign["id"])
    second = (await svc.client.post(url, headers=bureau)).json()
    assert second["result_version"] == 2 and second["counts_by_outcome"] == {"enrolled_local": 1}

    district = tokens.headers("school_district", DISTRICT_A)  # any reader
    assert (await svc.client.get(url, headers=district)).json() == second
    assert (await svc.client.get(f"{url}?version=2", headers=district)).json() == second
    assert (await svc.client.get(f"{url}?version=1", headers=district)).json() == first
    missing = await svc.client.get(f"{url}?version=3", headers=district)
    assert missing.status_code == 404 and missing.json()["code"] == "result_version_not_found"
    assert missing.json()["latest_version"] == 2
    assert (await svc.client.get(f"{url}?version=0", headers=district)).status_code == 422
    as_csv = await svc.client.get(f"{url}.csv?version=1", headers=bureau)
    assert as_csv.status_code == 200 and "-v1.csv" in as_csv.headers["Content-Disposition"]
    # notify's bulletins read CampaignCompleted: one per version, as before
    completed = await outbox_events(svc, "campaign.completed")
    assert [(e["result_version"], e["counts_by_outcome"]) for e in completed] == [
        (1, {"unaccounted": 1}),
        (2, {"enrolled_local": 1}),
    ]
    assert (await svc.client.get(f"/v1/campaigns/{campaign['id']}", headers=bureau)).json()[
        "result_version"
    ] == 2


async def move_hukou(svc, publisher, kid: Kid, *, district: str, town: str, sequence: int = 2) -> None:
    """The registry moves the child's hukou (ChildUpdated); waits until the read model has it."""
    await publisher.publish(
        ChildUpdated(
            child_id=kid.child_id,
            id_blind_index=svc.ctx.blind_index.of(kid.id_number),
            birth_date=kid.birth,
            hukou_town=town,
            hukou_school_district=district,
        ),
        subject=kid.child_id,
        sequence=sequence,
    )

    async def moved() -> bool:
        return (await child_row(svc, kid.child_id))["hukou_school_district"] == district

    await eventually(moved)


async def test_an_unresolved_task_follows_the_childs_hukou_to_its_new_school_district(
    start_service, event_publisher, tokens
):
    """After a hukou move the next run hands the child's open (or awaiting) task to the new school
    district, and tells it (ChildUnaccounted naming the new district); a superseded task reopened for a
    child who moved meanwhile reopens in the new district; a resolved task stays as it was resolved."""
    svc = await start(start_service)
    bureau = tokens.headers("bureau", BUREAU)
    district_a = tokens.headers("school_district", DISTRICT_A)
    district_b = tokens.headers("school_district", DISTRICT_B)
    lost = await register_child(svc, event_publisher)
    away = await register_child(svc, event_publisher)
    found = await register_child(svc, event_publisher)
    back = await register_child(svc, event_publisher)
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    await run_and_wait(svc, tokens, campaign["id"])
    tasks = {
        t["child_id"]: t
        for t in (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    }
    elsewhere = {
        "outcome": "enrolled_elsewhere",
        "evidence": "家长电话",
        "enrolling_org": "32",
        "on": "2026-10-10",
    }
    r = await svc.client.post(
        f"/v1/verification-tasks/{tasks[away.child_id]['id']}/resolution", headers=district_a, json=elsewhere
    )
    assert r.json()["state"] == "awaiting_confirmation"
    r = await svc.client.post(
        f"/v1/verification-tasks/{tasks[found.child_id]['id']}/resolution",
        headers=district_a,
        json={"outcome": "abroad", "evidence": "出入境记录", "on": "2026-10-10"},
    )
    assert r.json()["state"] == "resolved"
    # back: enrolled (its task superseded by the next run), then dropped out and moved
    student = (await enroll(svc, tokens, back)).json()["id"]
    assert (await run_and_wait(svc, tokens, campaign["id"]))["counts"]["tasks_superseded"] == 1
    dropout = await svc.client.post(
        f"/v1/students/{student}/dropout",
        headers=tokens.headers("school", SCHOOL_A),
        json={"on": "2026-09-20"},
    )
    assert dropout.status_code == 200, dropout.text

    for kid in (lost, away, found, back):
        await move_hukou(svc, event_publisher, kid, district=DISTRICT_B, town=TOWN_B)
    job = await run_and_wait(svc, tokens, campaign["id"])
    assert job["counts"]["tasks_created"] == 0 and job["counts"]["tasks_reopened"] == 1
    assert job["counts"]["tasks_moved"] == 3 and job["counts"]["events_published"] == 3

    # the resolved task stays with the district that resolved it
    still_a = (await svc.client.get("/v1/verification-tasks", headers=district_a)).json()["items"]
    assert [(t["id"], t["state"]) for t in still_a] == [(tasks[found.child_id]["id"], "resolved")]
    mine = {
        t["child_id"]: t
        for t in (await svc.client.get("/v1/verification-tasks", headers=district_b)).json()["items"]
    }
    assert {c: (t["state"], t["hukou_school_district"], t["hukou_town"]) for c, t in mine.items()} == {
        lost.child_id: ("open", DISTRICT_B, TOWN_B),
        away.child_id: ("awaiting_confirmation", DISTRICT_B, TOWN_B),
        back.child_id: ("open", DISTRICT_B, TOWN_B),
    }
    assert all(mine[c]["id"] == tasks[c]["id"] for c in mine)  # the same task: one per child and campaign
    # the new district is told: each moved task is announced again, naming it, as the task's next version
    announced = [
        (e["task_id"], e["hukou_school_district"], e["hukou_town"])
        for e in await outbox_events(svc, "child_unaccounted")
    ]
    assert sorted(announced[:4]) == sorted(
        (tasks[k.child_id]["id"], DISTRICT_A, TOWN_A) for k in (lost, away, found, back)
    )
    assert sorted(announced[4:]) == sorted((mine[c]["id"], DISTRICT_B, TOWN_B) for c in mine)
    outbox = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        envelopes = (
            await s.execute(
                select(outbox.c.envelope)
                .where(outbox.c.event_type.contains("child_unaccounted"))
                .order_by(outbox.c.position)
            )
        ).scalars()
        sequences = {e["data"]["task_id"]: e["sequence"] for e in map(json.loads, envelopes)}
    assert all(sequences[t["id"]] == t["version"] > 1 for t in mine.values())

    progress_b = (await svc.client.get(f"/v1/campaigns/{campaign['id']}/progress", headers=district_b)).json()
    assert [
        (p["hukou_school_district"], p["tasks_open"], p["tasks_awaiting_confirmation"]) for p in progress_b
    ] == [(DISTRICT_B, 2, 1)]
    assert (await svc.client.get(f"/v1/campaigns/{campaign['id']}/progress", headers=district_a)).json() == []
    r = await svc.client.post(
        f"/v1/verification-tasks/{mine[lost.child_id]['id']}/resolution",
        headers=district_b,
        json={"outcome": "not_in_school", "evidence": "入户核实", "on": "2026-10-20"},
    )
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    refused = await svc.client.post(
        f"/v1/verification-tasks/{mine[back.child_id]['id']}/resolution",
        headers=district_a,
        json={"outcome": "not_in_school", "evidence": "入户核实", "on": "2026-10-20"},
    )
    assert refused.status_code == 404
    # a re-run with nothing new moves nothing and tells nobody again
    again = await run_and_wait(svc, tokens, campaign["id"])
    assert again["counts"]["tasks_moved"] == 0 and again["counts"]["events_published"] == 0


async def classified(svc, campaign_id: str) -> dict[str, tuple[str, str, str | None]]:
    """The stored results of the campaign: {child: (outcome, rule, evidence)}."""
    async with svc.ctx.db.transaction() as s:
        rows = await s.execute(
            text("SELECT child_id, outcome, rule, evidence FROM verification_results WHERE campaign_id = :c"),
            {"c": campaign_id},
        )
        return {c: (o, r, e) for c, o, r, e in rows.all()}


async def test_a_placement_counts_only_while_its_student_record_is_active(
    start_service, event_publisher, tokens
):
    """A disabled child whose 学籍 dropped out (or graduated) while the placement was never ended is not
    ``placed``: the child falls through to the other rules, here unaccounted with a task. A placement on an
    enrolled record still places the child (seen for a child whose read model has no ID blind index, which
    the active-record rule cannot match)."""
    svc = await start(start_service)
    bureau, dpf = tokens.headers("bureau", BUREAU), tokens.headers("dept_dpf", DPF)
    school = tokens.headers("school", SCHOOL_A)
    dropped = await register_child(svc, event_publisher)
    graduated = await register_child(svc, event_publisher)
    placed = Kid(str(uuid.uuid4()), make_id(), dt.date(2016, 3, 1), DISTRICT_A, TOWN_A)
    await event_publisher.publish(
        ChildRegistered(
            child_id=placed.child_id,
            birth_date=placed.birth,
            hukou_town=TOWN_A,
            hukou_school_district=DISTRICT_A,
        ),
        subject=placed.child_id,
        sequence=1,
    )

    async def arrived() -> bool:
        return await child_row(svc, placed.child_id) is not None

    await eventually(arrived)
    records = {}
    for kid in (dropped, graduated, placed):
        records[kid.child_id] = sid = (await enroll(svc, tokens, kid)).json()["id"]
        placement = await svc.client.post(
            "/v1/placements",
            headers=dpf,
            json=home_delivery(kid, sid),
        )
        assert placement.status_code == 201, placement.text
    for kid, transition in ((dropped, "dropout"), (graduated, "graduation")):
        r = await svc.client.post(
            f"/v1/students/{records[kid.child_id]}/{transition}", headers=school, json={"on": "2026-09-15"}
        )
        assert r.status_code == 200, r.text
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    job = await run_and_wait(svc, tokens, campaign["id"])
    assert job["counts"]["by_outcome"] == {"placed": 1, "unaccounted": 2}
    results = await classified(svc, campaign["id"])
    assert results[placed.child_id][:2] == ("placed", "placement")
    assert results[dropped.child_id] == results[graduated.child_id] == ("unaccounted", "no_explanation", None)
    tasks = (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    assert sorted(t["child_id"] for t in tasks) == sorted([dropped.child_id, graduated.child_id])


async def test_a_suspension_ended_without_resumption_does_not_count_as_enrolled(
    start_service, event_publisher, tokens
):
    """A 休学 whose ``suspended_until`` is before the as-of date, with no 复学, explains nothing: the child
    is unaccounted (rule ``suspension_expired``, the record as evidence) and gets a task, as a suspected
    dropout is found out. A suspension running on the as-of date (its last day included) still counts."""
    svc = await start(start_service)
    bureau, school = tokens.headers("bureau", BUREAU), tokens.headers("school", SCHOOL_A)
    expired = await register_child(svc, event_publisher)
    last_day = await register_child(svc, event_publisher)
    running = await register_child(svc, event_publisher)
    records = {}
    for kid, starts_on, until in (
        (expired, "2025-09-01", "2026-06-30"),
        (last_day, "2026-01-01", "2026-09-30"),  # the campaign's as-of date
        (running, "2026-03-01", "2026-12-31"),
    ):
        records[kid.child_id] = sid = (await enroll(svc, tokens, kid)).json()["id"]
        r = await svc.client.post(
            f"/v1/students/{sid}/suspension",
            headers=school,
            json={"starts_on": starts_on, "until": until, "reason": "illness"},
        )
        assert r.status_code == 200, r.text
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    job = await run_and_wait(svc, tokens, campaign["id"])
    assert job["counts"]["by_outcome"] == {"enrolled_local": 2, "unaccounted": 1}
    results = await classified(svc, campaign["id"])
    assert results[expired.child_id] == (
        "unaccounted",
        "suspension_expired",
        f"student:{records[expired.child_id]}",
    )
    assert (
        results[last_day.child_id][:2]
        == results[running.child_id][:2]
        == ("enrolled_local", "active_student_record")
    )
    [task] = (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    assert task["child_id"] == expired.child_id
    # resumed (复学): enrolled again, the next run supersedes the task
    r = await svc.client.post(
        f"/v1/students/{records[expired.child_id]}/resumption", headers=school, json={"on": "2026-10-08"}
    )
    assert r.status_code == 200, r.text
    again = await run_and_wait(svc, tokens, campaign["id"])
    assert again["counts"]["by_outcome"] == {"enrolled_local": 3} and again["counts"]["tasks_superseded"] == 1


def status_changed(kid: Kid, status: str, previous: str) -> ChildStatusChanged:
    return ChildStatusChanged(
        child_id=kid.child_id, status=status, previous_status=previous, effective_date=dt.date(2026, 10, 2)
    )  # type: ignore[arg-type]


async def test_a_registry_status_change_after_a_run_reruns_the_campaign(
    start_service, event_publisher, tokens
):
    """A child the registry reports deceased after the run loses its open task; a child moved out before
    the run whose status returns to active gets one: the change flags the campaign for a re-run, as a
    completed feed does."""
    svc = await start(start_service, campaign_refresh_seconds=0.2)
    bureau = tokens.headers("bureau", BUREAU)
    dead = await register_child(svc, event_publisher)
    lost = await register_child(svc, event_publisher)
    back = await register_child(svc, event_publisher, status="moved_out")
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    first = await run_and_wait(svc, tokens, campaign["id"])
    assert first["counts"]["by_outcome"] == {"unaccounted": 2, "moved_out": 1}
    for kid, status, previous in ((dead, "deceased", "active"), (back, "active", "moved_out")):
        await event_publisher.publish(status_changed(kid, status, previous), subject=kid.child_id, sequence=2)

    async def rerun() -> bool:
        tasks = (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
        return {t["child_id"]: t["state"] for t in tasks} == {
            dead.child_id: "superseded",
            lost.child_id: "open",
            back.child_id: "open",
        }

    await eventually(rerun, timeout=20)
    c = (await svc.client.get(f"/v1/campaigns/{campaign['id']}", headers=bureau)).json()
    assert c["runs"] >= 2


async def test_the_status_handlers_flag_open_campaigns_that_have_run(start_service, event_publisher, tokens):
    """Per event and set-based alike: a status change that can change an outcome (to or from deceased,
    moved out, duplicate) flags every campaign that has run and is not frozen, once per batch; missing
    and a merge's re-announcement (duplicate to duplicate) flag nothing."""
    svc = await start(start_service)
    bureau = tokens.headers("bureau", BUREAU)
    kids = [await register_child(svc, event_publisher) for _ in range(3)]
    running = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    frozen = (
        await svc.client.post(
            "/v1/campaigns", headers=bureau, json={**CAMPAIGN, "kind": "november_comparison"}
        )
    ).json()
    never_run = (
        await svc.client.post("/v1/campaigns", headers=bureau, json={**CAMPAIGN, "year": 2027})
    ).json()
    for c in (running, frozen):
        await run_and_wait(svc, tokens, c["id"])
    assert (await svc.client.post(f"/v1/campaigns/{frozen['id']}/result", headers=bureau)).status_code == 200

    def received(kid: Kid, status: str, previous: str, sequence: int) -> ReceivedEvent[ChildStatusChanged]:
        data = status_changed(kid, status, previous)
        return ReceivedEvent(
            envelope=Envelope.wrap(data, subject=kid.child_id, sequence=sequence, trace_id=None), data=data
        )

    async def flagged(events: list[ReceivedEvent[ChildStatusChanged]], *, batch: bool) -> set[str]:
        async with svc.ctx.db.sessionmaker() as session, session.begin():
            # a write first, as the consumer's inbox insert (pysqlite opens its transaction only then)
            await session.execute(text("UPDATE campaigns SET refresh_requested_at = NULL"))
            if batch:
                await make_batch_handlers(svc.ctx)["status"](session, events)
            else:
                for event in events:
                    await make_handlers(svc.ctx)["status"](session, event)
            rows = await session.execute(
                text("SELECT id FROM campaigns WHERE refresh_requested_at IS NOT NULL")
            )
            found = {r[0] for r in rows.all()}
            await session.rollback()
        return found

    a, b, c = kids
    for batch in (False, True):
        for events in (
            [received(a, "deceased", "active", 2)],
            [received(a, "moved_out", "active", 2), received(b, "duplicate", "active", 2)],
            [received(a, "missing", "active", 2), received(b, "active", "moved_out", 2)],
        ):
            assert await flagged(events, batch=batch) == {running["id"]}, (batch, events)
        for events in (
            [received(a, "missing", "active", 2), received(c, "active", "missing", 2)],
            [received(b, "duplicate", "duplicate", 2)],
            [received(a, "deceased", "active", 1)],  # stale: not applied
        ):
            assert await flagged(events, batch=batch) == set(), (batch, events)
    assert never_run["runs"] == 0


async def test_a_task_is_resolved_on_no_future_day_and_its_timeliness_is_the_servers_day(
    start_service, event_publisher, tokens, server_day
):
    """The day a resolution or confirmation states (``on``: when the child's whereabouts were established)
    cannot be after the server's day (422 ``resolution_date_in_future``); on time means resolved in the
    system by the deadline, judged on the server's day, whatever earlier day is stated."""
    svc = await start(start_service)
    bureau, district = tokens.headers("bureau", BUREAU), tokens.headers("school_district", DISTRICT_A)
    late = await register_child(svc, event_publisher)
    timely = await register_child(svc, event_publisher)
    away = await register_child(svc, event_publisher)
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    await run_and_wait(svc, tokens, campaign["id"])
    tasks = {
        t["child_id"]: t["id"]
        for t in (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    }

    async def resolve(kid: Kid, on: str, **extra: str):  # type: ignore[no-untyped-def]
        body = {"outcome": "abroad", "evidence": "出入境记录", "on": on, **extra}
        return await svc.client.post(
            f"/v1/verification-tasks/{tasks[kid.child_id]}/resolution", headers=district, json=body
        )

    server_day(dt.date(2026, 10, 20))
    for kid, extra in ((late, {}), (away, {"outcome": "enrolled_elsewhere", "enrolling_org": "32"})):
        future = await resolve(kid, "2026-10-21", **extra)
        assert future.status_code == 422 and future.json()["code"] == "resolution_date_in_future", future.text
        assert future.json()["errors"][0]["field"] == "on"
    assert (await resolve(timely, "2026-10-20")).json()["state"] == "resolved"
    assert (
        await resolve(away, "2026-10-18", outcome="enrolled_elsewhere", enrolling_org="32")
    ).status_code == 200

    server_day(dt.date(2026, 11, 3))  # after the deadline (31 October): a day stated before it is not on time
    backdated = await resolve(late, "2026-10-25")
    assert backdated.status_code == 200 and backdated.json()["resolved_on"] == "2026-10-25"
    confirmation = f"/v1/verification-tasks/{tasks[away.child_id]}/confirmation"
    platform = tokens.headers("provincial_platform", "370406D01")
    future = await svc.client.post(
        confirmation, headers=platform, json={"source": "enrolling_org", "on": "2026-11-04"}
    )
    assert future.status_code == 422 and future.json()["code"] == "resolution_date_in_future"
    ok = await svc.client.post(
        confirmation, headers=platform, json={"source": "enrolling_org", "on": "2026-10-30"}
    )
    assert ok.status_code == 200 and ok.json()["resolved_on"] == "2026-10-30"
    resolved = {
        e["child_id"]: (e["resolved_on"], e["on_time"]) for e in await outbox_events(svc, "task.resolved")
    }
    assert resolved == {
        timely.child_id: ("2026-10-20", True),
        late.child_id: ("2026-10-25", False),
        away.child_id: ("2026-10-30", False),
    }


async def test_the_demo_stack_resolves_tasks_on_their_stated_days(
    start_service, event_publisher, tokens, server_day
):
    """``ENROLLMENT_SIMULATION`` (the demo's stack only, which plays the year in minutes): timeliness is
    judged on the stated day; a future one is still refused."""
    svc = await start(start_service, simulation=True)
    task = await one_unaccounted_task(svc, tokens, event_publisher)
    url = f"/v1/verification-tasks/{task['id']}/resolution"
    district = tokens.headers("school_district", DISTRICT_A)
    server_day(dt.date(2026, 11, 29))
    body = {"outcome": "abroad", "evidence": "出入境记录"}
    future = await svc.client.post(url, headers=district, json={**body, "on": "2026-11-30"})
    assert future.status_code == 422 and future.json()["code"] == "resolution_date_in_future"
    played = await svc.client.post(url, headers=district, json={**body, "on": "2026-10-12"})
    assert played.status_code == 200, played.text
    [event] = await outbox_events(svc, "task.resolved")
    assert (event["resolved_on"], event["on_time"]) == ("2026-10-12", True)


async def task_envelopes(svc, *events: str) -> list[tuple[str, int, str, dict]]:
    """The outbox's task events of the given kinds ('child_unaccounted', 'task.superseded', …) as written,
    in order: (event type suffix, sequence, subject, data)."""
    outbox = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        rows = (await s.execute(select(outbox.c.envelope).order_by(outbox.c.position))).scalars().all()
    found = []
    for envelope in map(json.loads, rows):
        kind = next((e for e in events if e in envelope["type"]), None)
        if kind is not None:
            found.append((kind, envelope["sequence"], envelope["subject"], envelope["data"]))
    return found


@pytest.mark.parametrize("path", ["default", "in_place"])
async def test_a_superseded_task_is_announced_and_a_reopened_one_announced_again(
    start_service, event_publisher, tokens, monkeypatch, path
):
    """A run that finds the child of an unresolved task explained supersedes the task and says so
    (VerificationTaskSuperseded at the task's new version, naming its school district and no person),
    so notify can cancel the district's deadline; a later run finding the child unaccounted again reopens
    the task where it was and announces it again (ChildUnaccounted at the task's next version), so the
    deadline opens again. A re-run with nothing new publishes nothing."""
    svc = await start(start_service)
    if path == "in_place" and svc.ctx.db.dialect != "postgresql":
        pytest.skip("the in-place statement is PostgreSQL's")
    bureau = tokens.headers("bureau", BUREAU)
    found, back = await register_child(svc, event_publisher), await register_child(svc, event_publisher)
    campaign = (await svc.client.post("/v1/campaigns", headers=bureau, json=CAMPAIGN)).json()
    await run_and_wait(svc, tokens, campaign["id"])  # swapped in: the campaign's partition exists
    if path == "in_place":

        async def not_swapped(*_args: object, **_kwargs: object) -> None:
            return None

        monkeypatch.setattr(classify, "classify_and_swap_postgresql", not_swapped)
    tasks = {
        t["child_id"]: t["id"]
        for t in (await svc.client.get("/v1/verification-tasks", headers=bureau)).json()["items"]
    }
    students = {kid.child_id: (await enroll(svc, tokens, kid)).json()["id"] for kid in (found, back)}
    second = await run_and_wait(svc, tokens, campaign["id"])
    assert second["counts"]["tasks_superseded"] == 2 and second["counts"]["events_published"] == 2
    superseded = await task_envelopes(svc, "task.superseded")
    assert sorted((seq, subject, data["task_id"]) for _k, seq, subject, data in superseded) == sorted(
        (2, tasks[k.child_id], tasks[k.child_id]) for k in (found, back)
    )
    assert {tuple(sorted(d.items())) for *_rest, d in superseded} == {
        (
            ("campaign_id", campaign["id"]),
            ("hukou_school_district", DISTRICT_A),
            ("task_id", tasks[k.child_id]),
        )
        for k in (found, back)
    }

    dropout = await svc.client.post(
        f"/v1/students/{students[back.child_id]}/dropout",
        headers=tokens.headers("school", SCHOOL_A),
        json={"on": "2026-09-20"},
    )
    assert dropout.status_code == 200, dropout.text
    third = await run_and_wait(svc, tokens, campaign["id"])
    counts = third["counts"]
    assert (counts["tasks_reopened"], counts["tasks_moved"], counts["tasks_created"]) == (1, 0, 0)
    assert counts["events_published"] == 1
    *_, (kind, sequence, subject, data) = await task_envelopes(svc, "child_unaccounted", "task.superseded")
    assert (kind, sequence, subject) == ("child_unaccounted", 3, tasks[back.child_id])
    assert (data["task_id"], data["hukou_school_district"], data["due_date"]) == (
        tasks[back.child_id],
        DISTRICT_A,
        "2026-10-31",
    )
    [reopened] = (await svc.client.get("/v1/verification-tasks?state=open", headers=bureau)).json()["items"]
    assert (reopened["id"], reopened["version"]) == (tasks[back.child_id], 3)
    again = await run_and_wait(svc, tokens, campaign["id"])
    assert again["counts"]["events_published"] == 0
