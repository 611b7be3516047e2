"""The provincial platform adapter (httpx): import student records in batches, push status and annotations.

Exactly once, resumable:
- import: each batch is applied in one transaction together with its checkpoint row (batch id
  primary key). A sync cancelled or crashed mid-batch rolls that batch back; the re-run resumes at the
  last checkpoint's cursor, and a batch whose id was applied before is skipped.
- push: a batch's id is derived from its content (records and their versions, annotation ids), so a
  batch re-sent after a crash carries the same id and the platform applies it once; the local
  checkpoint (and the annotations' pushed mark) is written only after the platform acknowledged.
  The checkpoint is the last pushed record's (updated_at, id), and the next batch starts after that
  pair (keyset): records written in one transaction share their updated_at (a batch registration of
  thousands), so a page may end inside such a group and the rest of it is found by id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any

import httpx
from sqlalchemy import and_, insert, or_, select, update

from baoxue.db import conflict_insert, utcnow
from baoxue.errors import ServiceUnavailable
from baoxue.pii.citizen_id import normalise_id_number
from baoxue.service import ServiceContext
from enrollment.provincial.models import ProvincialRecord, SyncBatch
from enrollment.settings import settings_of
from enrollment.students.models import IncapacityAnnotation, StudentRecord

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
    """Push records changed since the last acknowledged push, and annotations not yet pushed."""
    limit = limit or settings_of(ctx).provincial_batch_size
    counts = {"batches": 0, "items": 0, "duplicates": 0}
    async with _client(ctx) as client:
        while True:
            batch_id, items, cursor, annotation_ids = await _next_push_batch(ctx, limit)
            if not items:
                return counts
            try:
                response = await client.post(
                    "/api/v1/status-pushes", json={"batch_id": batch_id, "items": items}
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("provincial push failed", extra={"error_type": type(exc).__name__})
                raise ServiceUnavailable(
                    "The provincial platform did not answer.", code="sync_failed"
                ) from None
            async with ctx.db.transaction() as session:
                await session.execute(
                    insert(B).values(
                        batch_id=batch_id,
                        direction="push",
                        records=len(items),
                        cursor_after=cursor,
                        applied_at=utcnow(),
                    )
                )
                if annotation_ids:
                    A = IncapacityAnnotation.__table__  # type: ignore[attr-defined]
                    await session.execute(
                        update(A).where(A.c.id.in_(annotation_ids)).values(pushed_to_platform_at=utcnow())
                    )
            counts["batches"] += 1
            counts["items"] += len(items)
            counts["duplicates"] += int(bool(response.json().get("duplicate")))


PUSH_START = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), "")


def push_cursor(updated_at: dt.datetime, record_id: str) -> str:
    """The push checkpoint: the last pushed record's (updated_at, id), as JSON text."""
    return json.dumps({"updated_at": updated_at.isoformat(), "id": record_id})


def parse_push_cursor(mark: str | None) -> tuple[dt.datetime, str]:
    """(updated_at, id) of a push checkpoint. A checkpoint written before the cursor carried the id is a
    bare timestamp: resumed with the empty id, so the records of that instant are pushed again (the
    page that wrote it may have ended inside them) rather than skipped."""
    if not mark:
        return PUSH_START
    if mark.startswith("{"):
        cursor = json.loads(mark)
        return dt.datetime.fromisoformat(cursor["updated_at"]), str(cursor["id"])
    return dt.datetime.fromisoformat(mark), ""


async def _next_push_batch(
    ctx: ServiceContext, limit: int
) -> tuple[str, list[dict[str, Any]], str, list[str]]:
    S = StudentRecord.__table__  # type: ignore[attr-defined]
    A = IncapacityAnnotation.__table__  # type: ignore[attr-defined]
    async with ctx.db.transaction() as session:
        mark = (
            await session.execute(
                select(B.c.cursor_after)
                .where(B.c.direction == "push")
                .order_by(B.c.applied_at.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        since, since_id = parse_push_cursor(mark)
        records = (
            await session.execute(
                select(S.c.id, S.c.version, S.c.status, S.c.student_number_enc, S.c.updated_at)
                .where(
                    or_(S.c.updated_at > since, and_(S.c.updated_at == since, S.c.id > since_id)),
                    S.c.source == "local",
                )
                .order_by(S.c.updated_at, S.c.id)
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
    cursor = push_cursor(records[-1].updated_at, records[-1].id) if records else push_cursor(since, since_id)
    return batch_id, items, cursor, [a.id for a in annotations]
