"""Offline batch sync: a day's visits in one call, one savepoint per item, per-item results."""

from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.errors import Problem
from baoxue.service import ServiceContext
from casework.visits.schemas import BatchItemResult, BatchResult, VisitBatch, VisitCreate
from casework.visits.service import record_visit


async def sync_visits(
    *, session: AsyncSession, ctx: ServiceContext, principal: Principal, batch: VisitBatch
) -> BatchResult:
    """Record each visit of ``batch`` as ``record_visit`` does. An item that fails validation or a rule
    is rolled back alone (its savepoint) and reported with its problem code; the others are kept.
    Items already stored (earlier syncs) come back as ``duplicate``."""
    items: list[BatchItemResult] = []
    for index, raw in enumerate(batch.visits):
        raw_id = raw.get("id") if isinstance(raw.get("id"), str) else None
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
