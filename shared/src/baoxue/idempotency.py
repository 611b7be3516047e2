"""``Idempotency-Key`` for creates that a mobile client may retry after losing the response.

The first request with a key stores its response; a retry with the same key and the same body gets
that stored response back (header ``Idempotent-Replayed: true``); the same key with a different body
is a 422 problem, never a silent second create. Keys are per caller.

Two requests with one key at the same moment (a client retrying before the first answer came back)
are serialised by a lock on the key, taken before the look-up and held to the end of the transaction:
the second waits for the first to commit, then finds its stored answer and replays it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.db import UTCDateTime, hold_transaction_lock, utcnow
from baoxue.errors import Problem

if TYPE_CHECKING:
    from baoxue.service import ServiceContext

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", max_length=200, description="A key per logical request; retries reuse it"
    ),
]
"""The ``Idempotency-Key`` request header, as an endpoint parameter."""
Produced = tuple[int, Any, dict[str, str]]
"""What a create answers: status code, JSON body (stored for replays: masked), headers."""


def define_idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("principal", String(100), primary_key=True),
        Column("key", String(200), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("response", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
    )


def request_fingerprint(payload: Any) -> str:
    """A stable hash of a request body (canonical JSON)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any


class StoredAnswer(Exception):
    """Raised by a service function that found the caller's key already answered (see :meth:`probe`)."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("idempotency key already answered")
        self.stored = stored


@dataclass(frozen=True)
class KeyProbe:
    """A key's look-up as scalar subqueries, to ride along in a service's first ``SELECT`` (one round trip
    less than a look-up of its own). :meth:`check` on the three values found raises :class:`StoredAnswer`
    for a stored answer of the same request, the 422 problem for another request, or returns."""

    store: IdempotencyStore
    principal: Principal
    key: str
    fingerprint: str

    def columns(self) -> list[Any]:
        t = self.store.table
        where = (t.c.principal == self.principal.subject, t.c.key == self.key)
        return [
            select(c).where(*where).scalar_subquery()
            for c in (t.c.request_hash, t.c.status_code, t.c.response)
        ]

    def check(self, request_hash: str | None, status_code: int | None, response: str | None) -> None:
        if request_hash is None:
            return
        if request_hash != self.fingerprint:
            raise _reused()
        raise StoredAnswer(StoredResponse(int(status_code or 0), json.loads(response or "null")))

    async def hold(self, session: AsyncSession) -> None:
        """Take the key's lock (:meth:`IdempotencyStore.hold`) before the statement that carries
        :meth:`columns`."""
        await self.store.hold(session, self.principal, self.key)

    async def lookup(self, session: AsyncSession) -> None:
        """The same check as a statement of its own (for paths that have no first ``SELECT`` to join)."""
        stored = await self.store.lookup(session, self.principal, self.key, self.fingerprint)
        if stored is not None:
            raise StoredAnswer(stored)


def _reused() -> Problem:
    return Problem(
        "This Idempotency-Key was already used for a different request.",
        status=422,
        code="idempotency_key_reused",
    )


class IdempotencyStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def probe(self, principal: Principal, key: str, fingerprint: str) -> KeyProbe:
        return KeyProbe(self, principal, key, fingerprint)

    async def hold(self, session: AsyncSession, principal: Principal, key: str) -> None:
        """Lock this caller's key until the end of the transaction, so that a concurrent request with the
        same key waits here, and its look-up, made after the first one's commit, finds the stored answer
        (without the lock both would miss it and both create; the second's key ``INSERT`` then failed)."""
        await hold_transaction_lock(
            session, f"idempotency:{principal.subject}:{key}", sqlite_write_lock_on=self.table
        )

    async def lookup(
        self, session: AsyncSession, principal: Principal, key: str, fingerprint: str
    ) -> StoredResponse | None:
        """The stored response for this caller's key, or None; 422 if the key was used for another body.
        Takes the key's lock first (:meth:`hold`)."""
        await self.hold(session, principal, key)
        t = self.table
        row = (
            await session.execute(select(t).where(t.c.principal == principal.subject, t.c.key == key))
        ).first()
        if row is None:
            return None
        if row.request_hash != fingerprint:
            raise _reused()
        return StoredResponse(row.status_code, json.loads(row.response))

    async def save(
        self,
        session: AsyncSession,
        principal: Principal,
        key: str,
        fingerprint: str,
        status_code: int,
        body: Any,
    ) -> None:
        await session.execute(
            insert(self.table).values(
                principal=principal.subject,
                key=key,
                request_hash=fingerprint,
                status_code=status_code,
                response=json.dumps(body, default=str, ensure_ascii=False),
                created_at=utcnow(),
            )
        )


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
