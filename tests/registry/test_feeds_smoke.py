"""A whole synthetic police feed goes in; every accepted row ends in one child record."""

from __future__ import annotations

from sqlalchemy import func, select

from registry.children.models import Child
from tests.registry.conftest import submit


async def test_police_feed_from_the_generator(start_service, tokens, district):
    svc = await start_service("registry")
    body = (district / "feeds/2026-09/police.csv").read_bytes()
    batch = await submit(svc, tokens, "police", "2026-09", body)
    assert batch["status"] == "completed"
    assert batch["rows_total"] == batch["accepted"] + batch["rejected"]
    assert batch["accepted"] > 300
    async with svc.ctx.db.transaction() as s:
        n = (await s.execute(select(func.count()).select_from(Child))).scalar_one()
    assert batch["children_registered"] <= n <= batch["accepted"]
