"""Retried POSTs from the mobile app: replay the stored answer of an ``Idempotency-Key`` (``ctx.idempotency``)."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth import Principal
from baoxue.idempotency import request_fingerprint
from baoxue.service import ServiceContext

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", max_length=200, description="A key per logical request; retries reuse it"
    ),
]
Produced = tuple[int, Any, dict[str, str]]


async def idempotent(
    session: AsyncSession,
    ctx: ServiceContext,
    principal: Principal,
    key: str | None,
    payload: Any,
    produce: Callable[[], Awaitable[Produced]],
) -> JSONResponse:
    """The stored answer of ``key`` (header ``Idempotent-Replayed: true``), or ``produce()``'s answer,
    stored under ``key`` in the same transaction. Without a key, just ``produce()``."""
    fingerprint = request_fingerprint(payload)
    if key:
        stored = await ctx.idempotency.lookup(session, principal, key, fingerprint)
        if stored is not None:
            return JSONResponse(
                stored.body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
            )
    status_code, body, headers = await produce()
    if key:
        await ctx.idempotency.save(session, principal, key, fingerprint, status_code, body)
    return JSONResponse(body, status_code=status_code, headers=headers)
