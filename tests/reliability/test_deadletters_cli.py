"""The operator's path for a dead letter, through the command itself: ``baoxue deadletters list`` and
``baoxue deadletters replay`` run as separate processes against a service's database.

Notify's real handlers consume real CaseConfirmed events from the run's NATS server; while a defect
makes the handler fail for one case (a deployed bug, simulated by wrapping the real handler), that event
is dead-lettered after the delivery limit and the others are applied. The operator then runs the command
with the fixed code (a fresh process, notify's unwrapped handlers): ``list`` shows the record without
personal data, ``replay`` applies it once (one report deadline for the case), a second ``replay``
answers ``already_applied`` and changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.app import build_context
from baoxue.catalog import load_service
from baoxue.contracts.casework import CaseConfirmed
from baoxue.events.consumer import ConsumerRunner, ReceivedEvent, Subscription
from baoxue.migrations import upgrade
from baoxue.testing.plugin import AUDIENCE, ISSUER, empty_tables_off_loop

ROOT = Path(__file__).resolve().parents[2]
SCHOOL, TOWN = "37040600101001", "370406001"


def _baoxue(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baoxue", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a cap: the command imports the whole service (≈ 14 s at load 7)
        check=False,
    )


async def test_deadletters_list_and_replay_through_the_command(
    baoxue_infra, event_namespace, event_publisher, jwt_key_file
):
    spec = load_service("notify")
    url = baoxue_infra.database_url(f"dlcli_{event_namespace}")
    upgrade(spec.migrations_dir, url)
    settings = spec.settings_cls(
        environment="test",
        database_url=url,
        nats_url=baoxue_infra.nats_url,
        event_namespace=event_namespace,
        var_dir=baoxue_infra.tmp / event_namespace,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_public_key_file=str(jwt_key_file),
    )
    ctx = build_context(spec, settings)
    await ctx.bus.connect()
    await ctx.bus.ensure_streams()

    poison_case = str(uuid.uuid4())

    def with_defect(sub: Subscription) -> Subscription:
        def wrap(handler):  # type: ignore[no-untyped-def]
            async def broken(session: AsyncSession, event: ReceivedEvent[CaseConfirmed]) -> None:
                if getattr(event.data, "case_id", None) == poison_case:
                    raise KeyError("a defect in this version")
                await handler(session, event)

            return broken

        return Subscription(sub.source_service, {c: wrap(h) for c, h in sub.handlers.items()})

    runner = ConsumerRunner(
        "notify",
        ctx.db,
        spec.tables.events,
        ctx.bus,
        [with_defect(s) for s in spec.subscriptions(ctx)],
        max_deliver=2,
        ack_wait=2.0,
    )
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).date()
    cases = [str(uuid.uuid4()) for _ in range(4)] + [poison_case]
    for case in cases:
        await event_publisher.publish(
            CaseConfirmed(
                case_id=case,
                child_id=str(uuid.uuid4()),
                school_code=SCHOOL,
                hukou_town=TOWN,
                state="confirmed",
                reason="learning_weariness",
                report_due=due,
            ),
            subject=case,
        )

    async def report_deadlines() -> dict[str, int]:
        async with ctx.db.transaction() as session:
            rows = await session.execute(
                text("SELECT case_id, COUNT(*) FROM deadlines WHERE kind = 'case_report' GROUP BY case_id")
            )
            return {r[0]: r[1] for r in rows}

    async def dead_letters() -> list[dict]:
        table = spec.tables.events.dead_letter
        async with ctx.db.transaction() as session:
            return [dict(r) for r in (await session.execute(select(table))).mappings()]

    task = asyncio.create_task(runner.run())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            len(await report_deadlines()) == 4 and await dead_letters()
        ):
            await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    applied = await report_deadlines()
    assert set(applied) == set(cases[:4]) and set(applied.values()) == {1}, applied
    assert poison_case not in applied, "the poison event must not have been applied by the broken version"

    env = dict(os.environ)
    env.update(
        {
            "NOTIFY_DATABASE_URL": url,
            "BAOXUE_NATS_URL": baoxue_infra.nats_url,
            "BAOXUE_EVENT_NAMESPACE": event_namespace,
            "BAOXUE_ENVIRONMENT": "test",
            "BAOXUE_VAR_DIR": str(baoxue_infra.tmp / event_namespace),
            "BAOXUE_JWT_PUBLIC_KEY_FILE": str(jwt_key_file),
            "BAOXUE_JWT_ISSUER": ISSUER,
            "BAOXUE_JWT_AUDIENCE": AUDIENCE,
        }
    )
    try:
        listed = _baoxue("deadletters", "list", "--service", "notify", env=env)
        assert listed.returncode == 0, listed.stderr[-2000:]
        records = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
        assert len(records) == 1, listed.stdout
        record = records[0]
        assert record["event_type"] == CaseConfirmed.event_type()
        assert record["error_code"] == "delivery_limit" and record["deliveries"] == 2, record
        assert "envelope" not in record and poison_case not in listed.stdout, "list shows no event content"
        assert "a defect in this version" not in listed.stdout, "exception messages are not stored"

        replayed = _baoxue("deadletters", "replay", "--service", "notify", str(record["id"]), env=env)
        assert replayed.returncode == 0, replayed.stderr[-2000:]
        assert replayed.stdout.split() == [str(record["id"]), "applied"], replayed.stdout
        after = await report_deadlines()
        assert after.get(poison_case) == 1 and len(after) == 5, after

        again = _baoxue("deadletters", "replay", "--service", "notify", str(record["id"]), env=env)
        assert again.returncode == 0, again.stderr[-2000:]
        assert again.stdout.split() == [str(record["id"]), "already_applied"], again.stdout
        assert await report_deadlines() == after, "a second replay must change nothing"
        assert (await dead_letters())[0]["replayed_at"] is not None
    finally:
        await ctx.bus.delete_streams()
        await ctx.bus.close()
        await ctx.db.dispose()
        await empty_tables_off_loop(url, spec.metadata)
