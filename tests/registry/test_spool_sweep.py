"""At start-up the registry deletes spooled submissions nothing will read again: they hold the
department's rows in plain text. Files of batches still to be applied, and young files (an upload in
progress on another replica), stay."""

from __future__ import annotations

import os
import time
import uuid

from registry.feeds import repository
from registry.feeds.uploads import spool_dir
from tests.registry.conftest import dept_headers, wait_job
from tests.registry.test_feed_resume import _post


async def test_start_up_sweeps_the_spool_of_final_batches_and_old_orphans(start_service, tokens):
    svc = await start_service("registry")
    r = await _post(svc, tokens, "SWEEP-1")
    assert r.status_code == 202, r.text
    done = r.json()
    await wait_job(svc.client, dept_headers(tokens, "police"), done["job_id"])
    async with svc.ctx.db.transaction() as s:
        row = await repository.get_batch(s, done["id"])
        assert row is not None and row["status"] == "completed"
        waiting = row | {"id": str(uuid.uuid4()), "status": "queued", "client_batch_id": None}
        waiting["content_hash"] = "0" * 64
        await repository.insert_batch(s, waiting)

    spool = spool_dir(svc.settings)
    spool.mkdir(parents=True, exist_ok=True)
    two_hours_ago = time.time() - 7200

    def spooled(name: str, *, old: bool) -> str:
        path = spool / name
        path.write_bytes(b'{"\xe5\xa7\x93\xe5\x90\x8d": "x"}\n')
        if old:
            os.utime(path, (two_hours_ago, two_hours_ago))
        return name

    final_leftover = spooled(f"batch-{done['id']}.ndjson", old=False)
    still_to_apply = spooled(f"batch-{waiting['id']}.ndjson", old=True)
    never_committed_old = spooled(f"batch-{uuid.uuid4()}.csv", old=True)
    never_committed_young = spooled(f"batch-{uuid.uuid4()}.csv", old=False)
    upload_old = spooled(f"{uuid.uuid4()}.xlsx", old=True)
    upload_young = spooled(f"{uuid.uuid4()}.xlsx", old=False)

    await start_service("registry")  # the service starting again (a replica on the same store): it sweeps
    left = {p.name for p in spool.iterdir()}
    assert left == {still_to_apply, never_committed_young, upload_young}
    assert not {final_leftover, never_committed_old, upload_old} & left
