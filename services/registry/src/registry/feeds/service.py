"""Feed rules: who may submit for which department, batch idempotency, the job, reports, the calendar."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.db import utcnow
from baoxue.errors import Conflict, Forbidden, NotFound, Problem
from baoxue.jobs import JobProgress, JobWork
from baoxue.pii.files import SealedFile
from baoxue.pii.masking import mask_address, mask_id_number, mask_name, mask_phone
from baoxue.service import ServiceContext
from registry.children.merge import period_end
from registry.feeds import repository
from registry.feeds.claims import claims_of
from registry.feeds.columns import CATEGORIES, DEPARTMENT_OF_ROLE, DEPARTMENTS, DISABILITY_TYPES
from registry.feeds.ingest import FINAL, run_feed_job
from registry.feeds.parsing import FeedFormat, inspect_feed
from registry.feeds.report import report_rows
from registry.feeds.uploads import SavedUpload, batch_file, spool_dir
from registry.feeds.validation import ID_AAD, PHONE_AAD, RAW_ROW_AAD
from registry.settings import RegistrySettings

log = logging.getLogger(__name__)
_PERIOD = re.compile(r"(20\d\d)-(03|09)")
CHINA = dt.timezone(dt.timedelta(hours=8))


def check_period(period: str) -> None:
    if not _PERIOD.fullmatch(period):
        raise Problem(
            "A feed period is YYYY-03 or YYYY-09 (deliveries are due end of March and September).",
            code="feed_period_invalid",
            status=422,
        )


def check_department(department: str) -> None:
    if department not in DEPARTMENTS:
        raise NotFound("No such department feed.")


def own_departments(principal: Principal) -> list[str] | None:
    """The departments whose batches the caller may see (None: all)."""
    if principal.has_role("bureau", "inspector"):
        return None
    return [DEPARTMENT_OF_ROLE[r] for r in principal.roles if r in DEPARTMENT_OF_ROLE]


def ensure_may_submit(principal: Principal, department: str) -> None:
    """A department submits only its own feeds."""
    check_department(department)
    if department not in (own_departments(principal) or []):
        raise Forbidden("You may submit only your own department's feeds.", code="feed_department_mismatch")


async def submit_batch(
    *,
    ctx: ServiceContext,
    principal: Principal,
    department: str,
    period: str,
    mode: str,
    client_batch_id: str | None,
    upload: SavedUpload,
    delivery_complete: bool = True,
) -> tuple[dict[str, Any], bool]:
    """Accept a saved submission: inspect the file, apply batch idempotency, create the batch and its job.

    Returns (batch, in_progress): True (202) for a new batch, and for a repeat of an earlier batch that
    is not final yet (same client batch id, or a commit of the same content for the same department
    and period): that batch, made sure to be applied (taken up again if no process is applying it,
    from this submission's copy if its own kept file is gone); False (200) for a repeat of a final
    batch, which starts nothing. A batch is applied once, also when the same batch arrives twice at the
    same moment (the department's submissions are serialised for the look-up and the insert). Uses its
    own committed transaction so the job can start right after it. The submission file is kept under
    the batch's id until the batch is final.
    """
    settings: RegistrySettings = ctx.settings  # type: ignore[assignment]
    kept: Path | None = None
    try:
        shape = await asyncio.to_thread(
            inspect_feed, SealedFile(upload.path, ctx.cipher), upload.fmt, max_rows=settings.feed_max_rows
        )
        async with ctx.db.transaction() as session:
            await repository.lock_submissions(session, department)
            earlier = await repository.find_repeat(
                session,
                department=department,
                period=period,
                mode=mode,
                content_hash=shape.rows_hash,
                client_batch_id=client_batch_id,
            )
            if earlier is not None:
                if earlier["content_hash"] != shape.rows_hash or earlier["period"] != period:
                    raise Conflict(
                        "This client batch id was already used for different content.",
                        code="feed_batch_id_reused",
                    )
                if earlier["status"] not in FINAL:
                    # Its kept file may be gone (another replica's disk): this copy has the same rows.
                    own = batch_file(settings, earlier["id"], earlier["source_format"])
                    if earlier["source_format"] == upload.fmt and not own.exists():
                        upload.path.replace(own)
                upload.path.unlink(missing_ok=True)
            else:
                batch_id = str(uuid.uuid4())
                job_id = await ctx.jobs.create(
                    session, kind=f"feed_{mode}", created_by=principal.subject, org=principal.org
                )
                values = {
                    "id": batch_id,
                    "department": department,
                    "period": period,
                    "mode": mode,
                    "source_format": upload.fmt,
                    "content_hash": shape.rows_hash,
                    "client_batch_id": client_batch_id,
                    "delivery_complete": delivery_complete,
                    "status": "queued",
                    "job_id": job_id,
                    "rows_total": shape.rows,
                    "submitted_by": principal.subject,
                    "submitted_org": principal.org,
                    "submitted_at": utcnow(),
                }
                await repository.insert_batch(session, values)
                kept = batch_file(settings, batch_id, upload.fmt)
                upload.path.replace(kept)
    except BaseException:
        upload.path.unlink(missing_ok=True)
        if kept is not None:
            kept.unlink(missing_ok=True)
        raise
    if earlier is not None:
        if earlier["status"] in FINAL:
            return earlier | {"duplicate": True}, False
        job_id = await ensure_applied(ctx, earlier)
        return earlier | {"duplicate": True, "job_id": job_id}, True
    assert kept is not None
    ctx.jobs.start(
        job_id,
        lambda progress: run_feed_job(
            ctx,
            progress,
            batch_id=batch_id,
            path=kept,
            fmt=upload.fmt,
            encoding=shape.encoding,
            rows_expected=shape.rows,
            department=department,
            period=period,
            mode=mode,
            cutoff=settings.cutoff_for(period),
            actor=principal.subject,
        ),
    )
    created = values | {
        "accepted": 0,
        "rejected": 0,
        "warnings": 0,
        "children_registered": 0,
        "children_updated": 0,
        "linked": 0,
        "review_items": 0,
        "completed_at": None,
    }
    return created, True


async def batch_work(ctx: ServiceContext, batch: dict[str, Any]) -> JobWork | None:
    """The job work that applies an accepted batch again (see ``run_feed_job``: idempotent), or None when
    it cannot be applied here: not final, some rows never staged, and its kept file gone. Such a batch
    is marked ``interrupted`` (``feed_upload_missing``) until a resubmission of it brings the file."""
    settings: RegistrySettings = ctx.settings  # type: ignore[assignment]
    fmt: FeedFormat = batch["source_format"]
    path: Path | None = batch_file(settings, batch["id"], fmt)
    if batch["status"] in FINAL:
        pass  # nothing to apply: the work ends the job with the batch's counts (and drops the file)
    elif path is not None and await asyncio.to_thread(path.exists):
        pass  # staged anew from the kept file
    else:
        async with ctx.db.transaction() as session:
            staged = await repository.staged_count(session, batch["id"])
        if staged != batch["rows_total"]:
            async with ctx.db.transaction() as session:
                await repository.mark_interrupted(session, batch["id"], "feed_upload_missing")
            log.warning(
                "feed batch not resumable here: its submission file is gone",
                extra={"batch_id": batch["id"], "staged": staged, "rows_total": batch["rows_total"]},
            )
            return None
        path = None  # every row is staged: only the merge is left

    async def work(progress: JobProgress) -> dict[str, Any]:
        encoding = None
        if path is not None and fmt == "csv" and batch["status"] not in FINAL:
            # The CSV's encoding, as at submission (in the job, not at start-up: it reads the file).
            shape = await asyncio.to_thread(
                inspect_feed, SealedFile(path, ctx.cipher), fmt, max_rows=settings.feed_max_rows
            )
            encoding = shape.encoding
        return await run_feed_job(
            ctx,
            progress,
            batch_id=batch["id"],
            path=path,
            fmt=fmt,
            encoding=encoding,
            rows_expected=batch["rows_total"],
            department=batch["department"],
            period=batch["period"],
            mode=batch["mode"],
            cutoff=settings.cutoff_for(batch["period"]),
            actor=batch["submitted_by"],
        )

    return work


async def resume_feed_job(ctx: ServiceContext, job: dict[str, Any]) -> JobWork | None:
    """For an abandoned or interrupted ``feed_*`` job (at start-up, or in a sweep after its process
    died): the work that finishes its batch."""
    async with ctx.db.transaction() as session:
        batch = await repository.batch_of_job(session, job["id"])
    if batch is None:
        return None
    return await batch_work(ctx, batch)


async def ensure_applied(ctx: ServiceContext, batch: dict[str, Any]) -> str:
    """Make sure a batch that is not final is being applied; returns the id of the job applying it.

    Nothing to do when a task of this process applies it, or its job is alive in another process (its
    heartbeat is fresh). Otherwise its job is taken back (or, if that job has ended, a new one is made
    and recorded on the batch) and started; if another process is still applying the batch, the new
    task waits for its claim and then finds the batch final.
    """
    job_id: str | None = batch["job_id"]
    if job_id and (
        job_id in ctx.jobs.tasks or claims_of(ctx).busy(batch["id"]) or await ctx.jobs.alive(job_id)
    ):
        return job_id
    if not (job_id and await ctx.jobs.claim(job_id, statuses=("queued", "running", "interrupted"))):
        async with ctx.db.transaction() as session:
            job_id = await ctx.jobs.create(
                session,
                kind=f"feed_{batch['mode']}",
                created_by=batch["submitted_by"],
                org=batch["submitted_org"],
            )
            await repository.set_job(session, batch["id"], job_id)
    work = await batch_work(ctx, batch)
    if work is None:
        async with ctx.db.transaction() as session:
            await ctx.jobs.interrupt(session, job_id, "feed_upload_missing")
        return job_id
    ctx.jobs.start(job_id, work)
    return job_id


async def visible_batch(*, session: AsyncSession, principal: Principal, batch_id: str) -> dict[str, Any]:
    """A batch the caller may see (its own department's, or any for bureau and inspectors), else 404."""
    batch = await repository.get_batch(session, batch_id)
    allowed = own_departments(principal)
    if batch is None or (allowed is not None and batch["department"] not in allowed):
        raise NotFound("No such feed batch.")
    return batch


async def error_report_lines(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, batch_id: str
) -> list[list[str]]:
    """The rows of a batch that carry reason codes, with their original cells (an audited read)."""
    batch = await visible_batch(session=session, principal=principal, batch_id=batch_id)
    # The report is for the submitting department: only its own people see the cells as they sent them.
    # Everyone else who may read the batch (bureau, inspectors) gets the personal cells masked.
    unmasked = batch["department"] in submitting_departments(principal)
    rows = await repository.rows_with_reasons(session, batch["id"])
    await ctx.audit.record(
        session,
        principal,
        "read",
        "feed_batch_rows",
        [batch["id"]],
        detail=f"error_report rows={len(rows)} unmasked={unmasked}",
    )
    decoded = (
        (
            r["row_number"],
            r["outcome"],
            r["reasons"].split(","),
            shown_cells(
                json.loads(ctx.cipher.decrypt(r["raw_cipher"], associated_data=RAW_ROW_AAD))
                if r["raw_cipher"]
                else staged_cells(ctx, r),
                unmasked=unmasked,
            ),
        )
        for r in rows
    )
    return list(report_rows(decoded))


_SEX_LABEL = {"M": "男", "F": "女"}
_GRADE_LABEL = {"1": "一级", "2": "二级", "3": "三级", "4": "四级"}


def staged_cells(ctx: ServiceContext, row: dict[str, Any]) -> dict[str, str]:
    """The cells of a row whose original cells were not kept (its reason came later, in the merge — an
    ``id_collision``): rebuilt from the staged, normalised values, ID number and phone decrypted.

    Normalised, not byte-for-byte: a sex left empty shows the one the ID number gave, categories show
    their standard labels (a department's default category included), dates are ISO.
    """
    categories = [c for c in (row["categories"] or "").split(",") if c]
    return {
        "name": row["name"] or "",
        "id_number": ctx.cipher.decrypt(row["id_cipher"], associated_data=ID_AAD) if row["id_cipher"] else "",
        "sex": _SEX_LABEL.get(row["sex"] or "", ""),
        "birth_date": row["birth_date"].isoformat() if row["birth_date"] else "",
        "hukou_address": row["hukou_address"] or "",
        "current_address": row["current_address"] or "",
        "guardian_name": row["guardian_name"] or "",
        "guardian_phone": ctx.cipher.decrypt(row["guardian_phone"], associated_data=PHONE_AAD)
        if row["guardian_phone"]
        else "",
        "categories": "、".join(CATEGORIES[c][1] if c in CATEGORIES else c for c in categories),
        "disability_type": DISABILITY_TYPES[row["disability_type"]][1]
        if row["disability_type"] in DISABILITY_TYPES
        else "",
        "disability_grade": _GRADE_LABEL.get(row["disability_grade"] or "", ""),
    }


def submitting_departments(principal: Principal) -> list[str]:
    """The departments the caller submits for (its own; none for bureau and inspectors)."""
    return [DEPARTMENT_OF_ROLE[r] for r in principal.roles if r in DEPARTMENT_OF_ROLE]


_CELL_MASKS: dict[str, Callable[[str], str]] = {
    "name": mask_name,
    "id_number": mask_id_number,
    "hukou_address": mask_address,
    "current_address": mask_address,
    "guardian_name": mask_name,
    "guardian_phone": mask_phone,
}


def shown_cells(cells: dict[str, str], *, unmasked: bool) -> dict[str, str]:
    """A row's cells for the report: as sent, or with every personal cell masked."""
    if unmasked:
        return cells
    return {k: _CELL_MASKS[k](v) if v and k in _CELL_MASKS else v for k, v in cells.items()}


async def feed_calendar(
    *, session: AsyncSession, year: int, today: dt.date | None = None
) -> list[dict[str, Any]]:
    """Every department × period of ``year``: delivered or not, when, counts; overdue after the due date.

    A department may deliver a period in several batches: ``delivered_at`` and ``batch_id`` are the
    latest's, ``first_delivered_at`` the first's (whether the delivery was on time); the counts are over
    all its completed commit batches of the period, a child or a rejected row sent again counted once
    (``repository.distinct_row_counts``, read only for periods of more than one batch: one batch's own
    counts are already distinct, as a person is accepted once in a batch)."""
    today = today or dt.datetime.now(CHINA).date()
    periods = [f"{year}-03", f"{year}-09"]
    delivered: dict[tuple[str, str], dict[str, Any]] = {}
    for batch in await repository.delivered_batches(session, periods):  # in the order they completed
        key = (batch["department"], batch["period"])
        seen = delivered.setdefault(
            key,
            {
                "batches": 0,
                "accepted": 0,
                "rejected": 0,
                "complete": False,
                "first_delivered_at": batch["completed_at"],
            },
        )
        seen["batches"] += 1
        seen["complete"] = seen["complete"] or batch["delivery_complete"]
        seen["accepted"] += batch["accepted"]
        seen["rejected"] += batch["rejected"]
        seen["delivered_at"], seen["batch_id"] = batch["completed_at"], batch["id"]
        seen.setdefault("ids", []).append(batch["id"])
    several = [i for seen in delivered.values() if seen["batches"] > 1 for i in seen["ids"]]
    for key, (accepted, rejected) in (await repository.distinct_row_counts(session, several)).items():
        delivered[key] |= {"accepted": accepted, "rejected": rejected}
    out = []
    for period in periods:
        due = period_end(period)
        for department in DEPARTMENTS:
            found = delivered.get((department, period))
            out.append(
                {
                    "department": department,
                    "period": period,
                    "due": due,
                    "delivered": found is not None,
                    "delivered_at": found["delivered_at"] if found else None,
                    "first_delivered_at": found["first_delivered_at"] if found else None,
                    "batch_id": found["batch_id"] if found else None,
                    "batches": found["batches"] if found else 0,
                    "complete": found["complete"] if found else False,
                    "accepted": found["accepted"] if found else 0,
                    "rejected": found["rejected"] if found else 0,
                    "overdue": found is None and today > due,
                }
            )
    return out


SPOOL_ORPHAN_AGE = dt.timedelta(hours=1)
_KEPT = re.compile(r"^batch-([0-9a-f-]{36})\.\w+$")


async def sweep_spool(ctx: ServiceContext, *, now: dt.datetime | None = None) -> int:
    """Delete spooled submissions nothing will read again (at start-up): the kept file of a batch that
    is final, and — older than an hour, so that no upload in progress on another replica is touched —
    the kept file of a batch that was never committed and an unfinished upload. They hold the
    department's rows in plain text. Returns how many files were deleted."""
    directory = spool_dir(ctx.settings)
    if not directory.is_dir():
        return 0
    now = now or utcnow()
    files = await asyncio.to_thread(lambda: [p for p in directory.iterdir() if p.is_file()])
    kept = {p: m.group(1) for p in files if (m := _KEPT.match(p.name))}
    async with ctx.db.transaction() as session:
        status = await repository.statuses(session, sorted(set(kept.values())))
    doomed = []
    for path in files:
        try:
            age = now - dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        except FileNotFoundError:
            continue
        batch_id = kept.get(path)
        final = batch_id is not None and status.get(batch_id) in FINAL
        orphan = (batch_id is None or batch_id not in status) and age > SPOOL_ORPHAN_AGE
        if final or orphan:
            doomed.append(path)
    for path in doomed:
        await asyncio.to_thread(path.unlink, True)
    if doomed:
        log.info("feed spool swept", extra={"deleted": len(doomed)})
    return len(doomed)


async def sweep_spool_at_start_up(ctx: ServiceContext) -> None:
    """The start-up hook (``ServiceSpec.on_startup``)."""
    await sweep_spool(ctx)
