"""The provincial platform adapter (httpx): import student records in batches, push status and annotations.

Exactly once, resumable:
- import: each batch is applied in one transaction together with its checkpoint row (batch id
  primary key). A sync cancelled or crashed mid-batch rolls that batch back; the re-run resumes at the
  last checkpoint's cursor, and a batch whose id was applied before is skipped.
- push: every local record whose current ``version`` differs from its ``pushed_version`` (the version
  the platform last acknowledged) is pending, and a batch is the first pending records by id (with the
  annotations not pushed yet). A batch's id is derived from its content (records and their versions,
  annotation ids), so a batch re-sent after a crash carries the same id and the platform applies it
  once. Only after the platform acknowledged, one transaction writes the batch's row and marks what was
  sent: ``pushed_version`` is set where the record still has the version sent (one set-based UPDATE), so
  a record changed while its batch was in flight stays pending and is pushed again; the annotations get
  their pushed mark. No clock decides what is pending: a change committed after a later one was pushed
  (a slow transaction) has still not been acknowledged, so it is still sent.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, tuple_, update

from baoxue.db import conflict_insert, utcnow
from baoxue.errors import ServiceUnavailable
from baoxue.pii.citizen_id import normalise_id_number
from baoxue.service import ServiceContext
from enrollment.provincial.models import ProvincialRecord, SyncBatch
from enrollment.settings import settings_of
from enrollment.students.models import IncapacityAnnotation, StudentRecord

S = StudentRecord.__table__  # type: ignore[attr-defined]
A = IncapacityAnnotation.__table__  # type: ignore[attr-defined]
MARK_CHUNK = 1000  # records per marking UPDATE: two bound parameters each (SQLite's limit is 32,766)

log = logging.getLogger(__name__)
B = SyncBatch.__table__  # type: ignore[attr-defined]
PR = ProvincialRecord.__table__  # type: ignore[attr-defined]


def _client(ctx: ServiceContext) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=settings_of(ctx).provincial_base_url, timeout=30.0)


async def _resume_cursor(ctx: ServiceContext) -> int:
    async with ctx.db.transaction() as session:
        row = (
            await session.execute(
                select(B.c.cursor_after)
                .where(B.c.direction == "import")
                .order_by(B.c.applied_at.desc())
                .limit(1)
            )
        ).first()
    return int(row[0]) if row and row[0] is not None else 0


async def import_records(ctx: ServiceContext, *, limit: int | None = None) -> dict[str, int]:
    """Pull every batch from the last checkpoint on; returns counts of batches applied and skipped."""
    limit = limit or settings_of(ctx).provincial_batch_size
    after: int | None = await _resume_cursor(ctx)
    counts = {"batches_applied": 0, "batches_skipped": 0, "records_applied": 0}
    async with _client(ctx) as client:
        while after is not None:
            try:
                response = await client.get(
                    "/api/v1/student-records", params={"after": after, "limit": limit}
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("provincial export failed", extra={"error_type": type(exc).__name__})
                raise ServiceUnavailable(
                    "The provincial platform did not answer.", code="sync_failed"
                ) from None
            page: dict[str, Any] = response.json()
            applied = await _apply_import_batch(ctx, page)
            counts["batches_applied" if applied else "batches_skipped"] += 1
            counts["records_applied"] += applied
            after = page["next_after"]
    return counts


async def _apply_import_batch(ctx: ServiceContext, page: dict[str, Any]) -> int:
    """Apply one exported batch and its checkpoint in one transaction; 0 if the batch was applied before."""
    async with ctx.db.transaction() as session:
        claimed = await session.execute(
            conflict_insert(ctx.db.dialect, B)
            .values(
                batch_id=page["batch_id"],
                direction="import",
                records=len(page["records"]),
                cursor_after=None if page["next_after"] is None else str(page["next_after"]),
                applied_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["batch_id"])
            .returning(B.c.batch_id)
        )
        if claimed.first() is None:
            return 0
        rows = [
            {
                "platform_record_id": r["record_id"],
                "id_blind_index": ctx.blind_index.of(normalise_id_number(r["id_number"])),
                "school_code": r["school_code"],
                "province_code": r["province_code"],
                "status": r["status"],
                "batch_id": page["batch_id"],
            }
            for r in page["records"]
        ]
        if rows:
            stmt = conflict_insert(ctx.db.dialect, PR).values(rows)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["platform_record_id"],
                    set_={
                        k: stmt.excluded[k]
                        for k in ("id_blind_index", "school_code", "province_code", "status", "batch_id")
                    },
                )
            )
    return len(page["records"])


async def push_changes(ctx: ServiceContext, *, limit: int | None = None) -> dict[str, int]:
    """Push every record changed since the platform last acknowledged it, and annotations not yet pushed."""
    limit = limit or settings_of(ctx).provincial_batch_size
    counts = {"batches": 0, "items": 0, "duplicates": 0}
    async with _client(ctx) as client:
        while True:
            batch = await _next_push_batch(ctx, limit)
            if not batch.items:
                return counts
            try:
                response = await client.post(
                    "/api/v1/status-pushes", json={"batch_id": batch.batch_id, "items": batch.items}
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("provincial push failed", extra={"error_type": type(exc).__name__})
                raise ServiceUnavailable(
                    "The provincial platform did not answer.", code="sync_failed"
                ) from None
            await _mark_pushed(ctx, batch)
            counts["batches"] += 1
            counts["items"] += len(batch.items)
            counts["duplicates"] += int(bool(response.json().get("duplicate")))


@dataclass(frozen=True)
class PushBatch:
    """One push: its content-derived id, the items sent, and what to mark once the platform acknowledged."""

    batch_id: str
    items: list[dict[str, Any]]
    versions: list[tuple[str, int]]  # (record id, version sent)
    annotation_ids: list[str]


async def _next_push_batch(ctx: ServiceContext, limit: int) -> PushBatch:
    """The first ``limit`` pending records by id (through the partial index of pending records) and the
    first ``limit`` annotations not pushed yet: two queries whatever the batch size."""
    async with ctx.db.transaction() as session:
        records = (
            await session.execute(
                select(S.c.id, S.c.version, S.c.status, S.c.student_number_enc)
                .where(S.c.source == "local", S.c.pushed_version != S.c.version)
                .order_by(S.c.id)
                .limit(limit)
            )
        ).all()
        annotations = (
            await session.execute(
                select(A, S.c.student_number_enc)
                .join(S, S.c.id == A.c.student_id)
                .where(A.c.pushed_to_platform_at.is_(None))
                .order_by(A.c.id)
                .limit(limit)
            )
        ).all()
    items = [
        {"student_number": ctx.cipher.decrypt(r.student_number_enc), "status": r.status} for r in records
    ]
    items += [
        {
            "student_number": ctx.cipher.decrypt(a.student_number_enc),
            "annotation": {
                "kind": "incapable_of_education",
                "assessing_body": a.assessing_body,
                "assessed_on": a.assessed_on.isoformat(),
                "reassess_on": a.reassess_on.isoformat(),
            },
        }
        for a in annotations
    ]
    key = ";".join([f"{r.id}:{r.version}" for r in records] + [f"a:{a.id}" for a in annotations])
    batch_id = "push-" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return PushBatch(
        batch_id, items, [(str(r.id), int(r.version)) for r in records], [str(a.id) for a in annotations]
    )


async def _mark_pushed(ctx: ServiceContext, batch: PushBatch) -> None:
    """After the platform's acknowledgement, in one transaction: the batch's row (a batch a concurrent
    push recorded first is left as it is), ``pushed_version`` of each record that still has the version
    sent (a record changed since stays pending), and the annotations' pushed mark."""
    async with ctx.db.transaction() as session:
        await session.execute(
            conflict_insert(ctx.db.dialect, B)
            .values(
                batch_id=batch.batch_id,
                direction="push",
                records=len(batch.items),
                cursor_after=None,
                applied_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["batch_id"])
        )
        for start in range(0, len(batch.versions), MARK_CHUNK):
            sent = batch.versions[start : start + MARK_CHUNK]
            await session.execute(
                update(S).where(tuple_(S.c.id, S.c.version).in_(sent)).values(pushed_version=S.c.version)
            )
        if batch.annotation_ids:
            await session.execute(
                update(A).where(A.c.id.in_(batch.annotation_ids)).values(pushed_to_platform_at=utcnow())
            )
