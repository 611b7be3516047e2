"""The audit log's hash chain: intact after normal work; an edited, a deleted and a truncated entry are found.

Runs on whichever database the run uses (SQLite by default, PostgreSQL with TEST_DATABASE_URL): the
suite is run on both (see docs/security.md).
"""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import delete, func, select, update

from baoxue.auth.principal import Principal
from baoxue.testing.plugin import eventually

WORKER = Principal(
    subject="u-audit", roles=frozenset({"school"}), org="37040600101001", scope="37040600101001"
)


async def _entries(svc, n: int) -> None:
    async with svc.ctx.db.transaction() as session:
        for i in range(n):
            await svc.ctx.audit.record(session, WORKER, "read", "case", [f"case-{i}"], purpose="家访前核对")


async def _sealed(svc) -> None:
    table = svc.ctx.audit.table

    async def done() -> bool:
        async with svc.ctx.db.transaction() as s:
            return (
                await s.execute(select(func.count()).where(table.c.chain_index.is_(None)))
            ).scalar_one() == 0

    await eventually(done, timeout=15)


async def _position_of(svc, chain_index: int) -> int:
    table = svc.ctx.audit.table
    async with svc.ctx.db.transaction() as s:
        return int(
            (await s.execute(select(table.c.position).where(table.c.chain_index == chain_index))).scalar_one()
        )


def _cli_verify(svc, jwt_key_file, *extra: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "BAOXUE_ENVIRONMENT": "test",
        "BAOXUE_DATABASE_URL": svc.settings.database_url,
        "BAOXUE_JWT_PUBLIC_KEY_FILE": str(jwt_key_file),
        "CASEWORK_DATABASE_URL": svc.settings.database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "baoxue", "audit", "verify", "--service", "casework", *extra],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_an_edited_sealed_entry_breaks_the_chain_there(start_service, jwt_key_file):
    svc = await start_service("casework")
    await _entries(svc, 20)
    await _sealed(svc)
    assert (await svc.ctx.audit.verify_chain(svc.ctx.db)).intact
    ok = _cli_verify(svc, jwt_key_file)
    assert ok.returncode == 0 and "chain intact" in ok.stdout, ok.stdout + ok.stderr

    table = svc.ctx.audit.table
    async with svc.ctx.db.transaction() as s:  # an insider rewrites the stated purpose of entry 7
        await s.execute(update(table).where(table.c.chain_index == 7).values(purpose="例行检查"))
    report = await svc.ctx.audit.verify_chain(svc.ctx.db)
    assert not report.intact and report.first_broken_position == await _position_of(svc, 7)
    broken = _cli_verify(svc, jwt_key_file)
    assert broken.returncode == 1 and "BROKEN at position" in broken.stdout, broken.stdout + broken.stderr


async def test_a_deleted_sealed_entry_breaks_the_chain_at_its_successor(start_service, jwt_key_file):
    svc = await start_service("casework")
    await _entries(svc, 20)
    await _sealed(svc)
    successor = await _position_of(svc, 6)
    table = svc.ctx.audit.table
    async with svc.ctx.db.transaction() as s:
        await s.execute(delete(table).where(table.c.chain_index == 5))
    report = await svc.ctx.audit.verify_chain(svc.ctx.db)
    assert not report.intact and report.first_broken_position == successor
    assert _cli_verify(svc, jwt_key_file).returncode == 1


async def test_deleting_the_newest_entries_is_found_with_a_logged_anchor(start_service, jwt_key_file):
    svc = await start_service("casework")
    await _entries(svc, 10)
    await _sealed(svc)
    anchor = await svc.ctx.audit.head(svc.ctx.db)
    assert anchor is not None and anchor[0] == 10
    logged = _cli_verify(svc, jwt_key_file)  # the operator logs the head the command prints
    assert logged.returncode == 0 and f"head {anchor[0]}:{anchor[1]}" in logged.stdout, logged.stdout
    assert (await svc.ctx.audit.verify_chain(svc.ctx.db, anchor=anchor)).intact
    table = svc.ctx.audit.table
    async with svc.ctx.db.transaction() as s:
        await s.execute(delete(table).where(table.c.chain_index >= 9))
    without_anchor = await svc.ctx.audit.verify_chain(svc.ctx.db)
    assert without_anchor.intact, "a truncated chain is consistent in itself: only the anchor can tell"
    with_anchor = await svc.ctx.audit.verify_chain(svc.ctx.db, anchor=anchor)
    assert not with_anchor.intact and with_anchor.anchor_missing
    found = _cli_verify(svc, jwt_key_file, "--anchor", f"{anchor[0]}:{anchor[1]}")
    assert found.returncode == 1 and "no longer in the chain" in found.stdout, found.stdout + found.stderr
    assert _cli_verify(svc, jwt_key_file, "--anchor", "10:nothex").returncode == 2
