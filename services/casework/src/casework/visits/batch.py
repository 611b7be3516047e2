"""Offline batch sync: a day's visits in one call, one savepoint per item, per-item results."""

import logging

from sqlalchemy.exc import DataError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.errors import Problem
from baoxue.service import ServiceContext
from casework.visits.schemas import BatchItemResult, BatchResult, VisitBatch, VisitCreate
from casework.visits.service import record_visit

log = logging.getLogger(__name__)


def _refused_item(exc: StatementError) -> bool:
    """Whether the database (or its driver) refused this item's values — a value it cannot store, or a
    constraint — rather than failed as a whole (unreachable, a lost connection: the batch fails, 503)."""
    return isinstance(exc, (DataError, IntegrityError)) or isinstance(exc.orig, (OverflowError, ValueError))


async def sync_visits(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, batch: VisitBatch
) -> BatchResult:
    """Record each visit of ``batch`` as ``record_visit`` does. An item that fails validation or a rule
    is rolled back alone (its savepoint) and reported with its problem code; the others are kept. So is
    an item the database refuses although the schema let it through (``value_not_storable``): the schema
    checks what is known to be unstorable, the savepoint keeps the others safe from the rest. An item
    that is not an object is rejected as an invalid VisitCreate. Items already stored (earlier syncs)
    come back as ``duplicate``."""
    items: list[BatchItemResult] = []
    for index, raw in enumerate(batch.visits):
        raw_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        try:
            data = VisitCreate.model_validate(raw)
        except ValueError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]) or "body", "code": e["type"]}
                for e in getattr(exc, "errors", lambda: [])()
            ]
            items.append(
                BatchItemResult(
                    index=index, id=raw_id, status="rejected", code="validation_failed", errors=errors
                )
            )
            continue
        try:
            async with session.begin_nested():
                visit, created = await record_visit(session=session, ctx=ctx, principal=principal, data=data)
        except Problem as problem:
            items.append(
                BatchItemResult(
                    index=index,
                    id=data.id,
                    status="rejected",
                    code=problem.code,
                    detail=problem.detail,
                    errors=problem.errors,
                )
            )
            continue
        except StatementError as exc:
            if not _refused_item(exc):
                raise
            # Unforeseen (the schema should have refused it): logged without the value, the item rejected.
            log.warning("visit batch item refused by the database", extra={"error_type": type(exc).__name__})
            items.append(
                BatchItemResult(
                    index=index,
                    id=data.id,
                    status="rejected",
                    code="value_not_storable",
                    detail="The database cannot store this visit as sent.",
                )
            )
            continue
        items.append(
            BatchItemResult(
                index=index,
                id=visit.id,
                status="created" if created else "duplicate",
                flags=list(visit.flags),
                version=visit.version,
            )
        )
    return BatchResult(
        created=sum(i.status == "created" for i in items),
        duplicates=sum(i.status == "duplicate" for i in items),
        rejected=sum(i.status == "rejected" for i in items),
        items=items,
    )
