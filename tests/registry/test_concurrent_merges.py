"""Four departments' batches naming the same new children, applied at the same moment, end with one
child per person and every batch succeeded: their merges wait for each other (``lock_merges``) instead
of both registering a child and one failing on the unique blind index."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from registry.children.models import Child
from tests.registry.conftest import csv_body, submit
from tests.registry.people import distinct_rows

CHILDREN = 150
DEPARTMENTS = ("police", "poverty", "dpf", "civil")


async def test_concurrent_batches_of_the_same_new_children_all_succeed_with_one_child_each(
    start_service, tokens
):
    svc = await start_service("registry")
    body = csv_body(*distinct_rows(CHILDREN, "孙"))
    batches = await asyncio.gather(*(submit(svc, tokens, d, "2026-09", body) for d in DEPARTMENTS))
    assert [b["status"] for b in batches] == ["completed"] * len(DEPARTMENTS), {
        k: batches[0][k] for k in ("status", "accepted", "rejected", "rows_total", "warnings")
    }
    assert [b["accepted"] for b in batches] == [CHILDREN] * len(DEPARTMENTS), {
        k: batches[0][k] for k in ("status", "accepted", "rejected", "rows_total", "warnings")
    }
    assert sum(b["children_registered"] for b in batches) == CHILDREN
    async with svc.ctx.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Child))).scalar_one() == CHILDREN
