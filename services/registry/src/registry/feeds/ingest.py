"""The feed job: read → validate (in a worker thread) → stage (COPY / executemany) → merge (SQL) → events.

Staging happens in short transactions so progress is visible; the merge of a commit batch runs in
one transaction, so a batch is applied completely or not at all. A batch whose process died before
that transaction committed is taken up again (:func:`resume_feed_job` at start-up, or a resubmission
of it): staged anew from its kept submission file, then merged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, text, update

from baoxue.contracts.registry import FeedCompleted
from baoxue.db import utcnow
from baoxue.jobs import JobProgress
from baoxue.pii.files import SealedFile
from baoxue.service import ServiceContext
from registry.children import merge
from registry.children.bulk import insert_rows, is_postgresql
from registry.children.merging import announce_merged
from registry.children.models import ReviewItem
from registry.children.snapshots import refresh_snapshots
from registry.feeds import repository
from registry.feeds.claims import claims_of
from registry.feeds.models import FeedBatch, FeedRow
from registry.feeds.parsing import FeedFormat, Row, read_rows
from registry.feeds.reasons import severity
from registry.feeds.validation import RowValidator
from registry.linkage.matching import link_batch

log = logging.getLogger(__name__)
CHUNK = 2000
ANALYZE_FROM_ROWS = 10_000
"""A batch merging this many rows or more refreshes the statistics of ``children`` and
``child_attributes`` inside its merge, before the statements that join them (PostgreSQL)."""
_batches = FeedBatch.__table__  # type: ignore[attr-defined]
_rows = FeedRow.__table__  # type: ignore[attr-defined]
_reviews = ReviewItem.__table__  # type: ignore[attr-defined]
_COLUMNS = [c.name for c in _rows.columns]


def _validate_chunk(validator: RowValidator, rows: Iterator[Row]) -> tuple[list[dict[str, Any]], float]:
    """The next ``CHUNK`` rows validated (``FeedRow`` columns), and the seconds it took."""
    started = time.perf_counter()
    out = []
    for number, cells, malformed in itertools.islice(rows, CHUNK):
        staged = validator.validate(number, cells, malformed=malformed)
        out.append({c: staged.get(c) for c in _COLUMNS} | {"reasons": staged["reasons"]})
    return out, time.perf_counter() - started


FINAL = ("completed", "validated", "failed")
"""Batch statuses after which nothing more happens to a batch; any other (queued, running, interrupted)
is a batch acknowledged with 202 and still to be applied."""
_COUNTS = (
    "rows_total",
    "accepted",
    "rejected",
    "warnings",
    "children_registered",
    "children_updated",
    "linked",
    "review_items",
)


class BatchFailed(Exception):
    """A batch taken up again that had already failed: its job fails with the batch's error code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def run_feed_job(
    ctx: ServiceContext,
    progress: JobProgress,
    *,
    batch_id: str,
    path: Path | None,
    fmt: FeedFormat,
    encoding: str | None,
    rows_expected: int,
    department: str,
    period: str,
    mode: str,
    cutoff: dt.date,
    actor: str,
) -> dict[str, Any]:
    """Process one batch; returns the job result (counts). Marks the batch failed if anything raises.

    Idempotent, so that a batch can be taken up again after its process died: the batch's claim is
    held throughout (one applier at a time, :mod:`registry.feeds.claims`); a batch already final is not
    applied again (its counts are the result); staged rows a dead applier left are staged anew; the
    merge runs only if the batch is still not final in its own transaction. ``path`` None: the batch's
    rows are all staged already (the file is gone), only the merge is left.

    The submission file is removed once the batch is final, never on cancellation (a shutdown): a batch
    interrupted is applied again from it.
    """
    claims = claims_of(ctx)
    async with claims.hold(batch_id):
        async with ctx.db.transaction() as session:
            batch = (
                (await session.execute(select(_batches).where(_batches.c.id == batch_id))).mappings().first()
            )
        if batch is None or batch["status"] in FINAL:
            await _discard(path)
            claims.forget(batch_id)
            return _final_result(batch_id, batch)
        try:
            result = await _run(
                ctx,
                progress,
                batch_id=batch_id,
                path=path,
                fmt=fmt,
                encoding=encoding,
                rows_expected=rows_expected,
                department=department,
                period=period,
                mode=mode,
                cutoff=cutoff,
                actor=actor,
            )
        except Exception as exc:
            async with ctx.db.transaction() as session:
                await session.execute(
                    update(_batches)
                    .where(_batches.c.id == batch_id, _batches.c.status.not_in(FINAL))
                    .values(
                        status="failed",
                        error_code=getattr(exc, "code", type(exc).__name__)[:60],
                        completed_at=utcnow(),
                    )
                )
            await _discard(path)
            claims.forget(batch_id)
            raise
        await _discard(path)
        claims.forget(batch_id)
        return result


async def _discard(path: Path | None) -> None:
    if path is not None:
        await asyncio.to_thread(path.unlink, True)


def _final_result(batch_id: str, batch: Any) -> dict[str, Any]:
    """The job result of a batch found final (applied by an earlier run): its counts as recorded."""
    if batch is None:
        raise BatchFailed("feed_batch_missing")
    if batch["status"] == "failed":
        raise BatchFailed(batch["error_code"] or "feed_failed")
    return {"batch_id": batch_id, "counts": {k: batch[k] for k in _COUNTS}, "already_applied": True}


def _tally(counts: dict[str, int], rows: Iterable[Any]) -> None:
    for r in rows:
        counts["rows_total"] += 1
        counts["accepted" if r["outcome"] == "accepted" else "rejected"] += 1
        if r["outcome"] == "accepted" and r["reasons"]:
            counts["warnings"] += any(severity(c) != "error" for c in r["reasons"].split(","))


async def _run(
    ctx: ServiceContext,
    progress: JobProgress,
    *,
    batch_id: str,
    path: Path | None,
    fmt: FeedFormat,
    encoding: str | None,
    rows_expected: int,
    department: str,
    period: str,
    mode: str,
    cutoff: dt.date,
    actor: str,
) -> dict[str, Any]:
    async with ctx.db.transaction() as session:
        await session.execute(
            update(_batches)
            .where(_batches.c.id == batch_id, _batches.c.status.not_in(FINAL))
            .values(status="running")
        )
    started = time.perf_counter()
    counts = {"rows_total": 0, "accepted": 0, "rejected": 0, "warnings": 0}
    validate_seconds = insert_seconds = 0.0
    if path is None:
        async with ctx.db.transaction() as session:
            staged_rows = (
                await session.execute(
                    select(_rows.c.outcome, _rows.c.reasons).where(_rows.c.batch_id == batch_id)
                )
            ).mappings()
            _tally(counts, staged_rows)
    else:
        async with ctx.db.transaction() as session:
            # Rows staged by an applier that died (the merge had not run: the batch is not final).
            await session.execute(delete(_rows).where(_rows.c.batch_id == batch_id))
        validator = RowValidator(department, cutoff, ctx.directory, ctx.cipher, ctx.blind_index, batch_id)
        rows = read_rows(SealedFile(path, ctx.cipher), fmt, encoding)
        # The next chunk is validated (worker thread) while this one is written (the event loop waits on
        # the database): the two overlap instead of alternating.
        pending = asyncio.ensure_future(asyncio.to_thread(_validate_chunk, validator, rows))
        try:
            while True:
                staged, seconds = await pending
                validate_seconds += seconds
                if not staged:
                    break
                pending = asyncio.ensure_future(asyncio.to_thread(_validate_chunk, validator, rows))
                _tally(counts, staged)
                t0 = time.perf_counter()
                async with ctx.db.transaction() as session:
                    await insert_rows(session, _rows, staged)
                insert_seconds += time.perf_counter() - t0
                await progress.report(0.8 * counts["rows_total"] / max(rows_expected, 1), counts)
        finally:
            if not pending.done():  # a write failed: let the thread finish before the file goes away
                with contextlib.suppress(BaseException):
                    await pending
    await progress.report(0.8, counts, force=True)
    staged_at = time.perf_counter()

    result: dict[str, Any] = dict(counts) | {
        "stage_seconds": round(staged_at - started, 3),
        "validate_seconds": round(validate_seconds, 3),
        "insert_seconds": round(insert_seconds, 3),
    }
    async with ctx.db.transaction() as session:
        # The guard of exactly-once: the merge runs only while the batch is not final, decided on its row
        # in this transaction (PostgreSQL: the row lock serialises two of them, the second sees the
        # first's "completed"; SQLite: one writer at a time).
        guard = await session.execute(
            update(_batches)
            .where(_batches.c.id == batch_id, _batches.c.status.not_in(FINAL))
            .values(status="running")
        )
        applied_here = getattr(guard, "rowcount", 0) == 1
        if applied_here:
            if mode == "commit":
                result |= await _apply(
                    ctx,
                    session,
                    batch_id=batch_id,
                    department=department,
                    period=period,
                    actor=actor,
                    accepted=counts["accepted"],
                )
            await session.execute(
                update(_batches)
                .where(_batches.c.id == batch_id)
                .values(
                    status="completed" if mode == "commit" else "validated",
                    error_code=None,
                    completed_at=utcnow(),
                    **{k: result.get(k, 0) for k in _COUNTS},
                )
            )
            if mode == "commit":
                await ctx.outbox.add(
                    session,
                    FeedCompleted(
                        batch_id=batch_id,
                        department=department,
                        period=period,
                        rows_total=result["rows_total"],
                        accepted=result["accepted"],
                        rejected=result["rejected"],
                        warnings=result["warnings"],
                        children_registered=result["children_registered"],
                        children_updated=result["children_updated"],
                    ),
                    subject=batch_id,
                    sequence=1,
                )
        else:
            batch = (
                (await session.execute(select(_batches).where(_batches.c.id == batch_id))).mappings().first()
            )
    if not applied_here:
        return _final_result(batch_id, batch)
    log.info("feed batch processed", extra={"batch_id": batch_id, "mode": mode, **counts})
    return {"batch_id": batch_id, "counts": result}


class _StepTimer:
    """Seconds spent in each merge step (reported in the job result; counts and timings only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = round(now - self._last, 3)
        self._last = now


async def _apply(
    ctx: ServiceContext,
    session: Any,
    *,
    batch_id: str,
    department: str,
    period: str,
    actor: str,
    accepted: int,
) -> dict[str, Any]:
    district = ctx.directory.district_code
    await repository.lock_merges(session)  # a concurrent batch naming the same new children waits here
    if is_postgresql(session):
        # The merge statements of a large batch cost more than jit_above_cost: PostgreSQL would JIT-compile
        # each one (seconds of LLVM at 100k rows for statements that run once), and 4 MB of work_mem
        # sends their sorts to disk. Both only for this transaction.
        await session.execute(text("SET LOCAL jit = off"))
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
    step = _StepTimer()
    await merge.resolve_by_id(session, batch_id)
    collisions = await merge.detach_collisions(session, batch_id)
    step("resolve")
    await merge.register_new(session, batch_id, district=district, with_id=True)
    await merge.register_new(session, batch_id, district=district, with_id=False)
    step("register")
    linked = await link_batch(session, batch_id, actor=actor)
    step("link")
    await merge.update_contact_values(session, batch_id, department=department, period=period)
    step("contact_values")
    await merge.record_provenance(session, batch_id, department=department, period=period)
    step("provenance")
    if accepted >= ANALYZE_FROM_ROWS:
        await merge.refresh_statistics(session)
    step("statistics")
    await merge.confirm_flags(session, batch_id, department=department, period=period)
    await merge.lapse_flags(session, batch_id, department=department, period=period)
    step("flags")
    await merge.open_conflicts(session, batch_id)
    step("conflicts")
    touched = await merge.touched_children(session, batch_id)
    # Records of earlier batches that linkage merged: announced as duplicates, then refreshed with their
    # survivors (the rows' own records and survivors are touched already). The records merged into them
    # before name the survivor now: announced too (their status stays duplicate).
    await announce_merged(session, ctx.outbox, [*linked.earlier_merged, *linked.repointed])
    touched += [child for m in linked.earlier_merged for child in m[:2]]
    registered, updated = await refresh_snapshots(session, ctx.outbox, touched)
    step("snapshots_events")
    review_count = (
        await session.execute(select(func.count()).where(_reviews.c.batch_id == batch_id))
    ).scalar_one()
    return {
        "children_registered": registered,
        "children_updated": updated,
        "linked": linked.auto,
        "id_collisions": collisions,
        "review_items": int(review_count),
        "merge_seconds": step.seconds,
    }
