"""Fixtures of the registry tests: a small synthetic district, feed helpers, department tokens."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from baoxue.synth import SynthConfig, generate_district

BUREAU = "370406D01"
POLICE = "370406D02"
POVERTY = "370406D03"
DPF = "370406D04"
CIVIL = "370406D05"
INSPECTOR = "370406D07"
DEPT_ORG = {"police": POLICE, "poverty": POVERTY, "dpf": DPF, "civil": CIVIL}
HEADER = "姓名,身份证号,性别,出生日期,户籍地址,现住址,监护人姓名,监护人电话,类别,残疾类别,残疾等级"


def dept_headers(tokens: Any, department: str) -> dict[str, str]:
    return tokens.headers(f"dept_{department}", DEPT_ORG[department])


@pytest.fixture(scope="session")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated district of 400 children with two feed periods (2026-03, 2026-09) and ground truth."""
    out = tmp_path_factory.mktemp("synth")
    generate_district(SynthConfig(children=400, seed=7), out)
    return out


async def wait_job(client: Any, headers: dict[str, str], job_id: str, timeout: float = 30) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        job = (await client.get(f"/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("succeeded", "failed", "interrupted"):
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("job did not finish")


async def submit(
    svc: Any,
    tokens: Any,
    department: str,
    period: str,
    body: bytes,
    *,
    content_type: str = "text/csv",
    mode: str = "commit",
    client_batch_id: str | None = None,
    expect: int = 202,
) -> dict[str, Any]:
    """Submit a batch and, when it was accepted, wait for its job; returns the batch as it ended."""
    headers = dept_headers(tokens, department)
    params = {"mode": mode} | ({"client_batch_id": client_batch_id} if client_batch_id else {})
    response = await svc.client.post(
        f"/v1/feeds/{department}/{period}/batches",
        content=body,
        params=params,
        headers=headers | {"Content-Type": content_type},
    )
    assert response.status_code == expect, response.text
    batch = response.json()
    if response.status_code == 202:
        job = await wait_job(svc.client, headers, batch["job_id"])
        assert job["status"] == "succeeded", job
        batch = (await svc.client.get(f"/v1/feeds/batches/{batch['id']}", headers=headers)).json()
    return batch  # type: ignore[no-any-return]


def csv_body(*rows: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode(encoding)


async def outbox_events(svc: Any, event_type_suffix: str | None = None) -> list[dict[str, Any]]:
    """Envelopes (dicts) in the outbox, oldest first, optionally only types ending in the suffix."""
    import json

    from sqlalchemy import select

    table = svc.spec.tables.events.outbox
    async with svc.ctx.db.transaction() as s:
        rows = (
            await s.execute(select(table.c.event_type, table.c.envelope).order_by(table.c.created_at))
        ).all()
    return [
        json.loads(env) for typ, env in rows if event_type_suffix is None or typ.endswith(event_type_suffix)
    ]


async def stream_events(svc: Any) -> list[dict[str, Any]]:
    """Every envelope published on the registry's stream of this test's namespace (after the relay ran)."""
    import json

    from baoxue.events.envelope import stream_name

    await svc.drain_outbox()
    bus = svc.ctx.bus
    info = await bus.stream_info("registry")
    name = stream_name(bus.namespace, "registry")
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await bus.js.get_msg(name, seq)
        out.append(json.loads(msg.data))
    return out
