"""One applier per feed batch at a time, across the processes of a deployment.

A batch acknowledged with 202 may be taken up again (at start-up, after its process died; or by a
resubmission of it): whoever applies it first *holds its claim*. In this process: an ``asyncio.Lock``
per batch. On PostgreSQL, also a session-level advisory lock on the batch, on a connection kept for
as long as the claim is held: it dies with its process, so a batch whose applier was killed is free at
once, and one whose applier lives is never applied by a second process at the same time. A claim that
is taken waits (polling) until it is free; the holder then finds the batch final and does nothing.

On SQLite (the embedded deployment, processes on one machine sharing the database file and its var
dir), the same by an exclusive ``flock`` on ``batch-<id>.lock`` in the spool folder: released by the
kernel when its process dies. The lock file is removed once the batch is final (:meth:`forget`); one
who then locks a stale or a new file finds the batch final, so that race is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text

from baoxue.db import Database
from baoxue.service import ServiceContext
from registry.feeds.uploads import spool_dir


def _key(batch_id: str) -> int:
    digest = hashlib.sha256(f"registry.feed_batch:{batch_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class BatchClaims:
    def __init__(self, db: Database, lock_dir: Path, *, poll: float = 0.5) -> None:
        self.db = db
        self.lock_dir = lock_dir
        self.poll = poll
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def busy(self, batch_id: str) -> bool:
        """True while a task of this process holds or waits for the batch's claim."""
        return batch_id in self._locks

    @contextlib.asynccontextmanager
    async def hold(self, batch_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(batch_id, (asyncio.Lock(), 0))
        self._locks[batch_id] = (lock, users + 1)
        try:
            async with lock:
                held = self._advisory if self.db.dialect == "postgresql" else self._flock
                async with held(batch_id):
                    yield
        finally:
            lock, users = self._locks[batch_id]
            if users <= 1:
                del self._locks[batch_id]
            else:
                self._locks[batch_id] = (lock, users - 1)

    @contextlib.asynccontextmanager
    async def _advisory(self, batch_id: str) -> AsyncIterator[None]:
        key = _key(batch_id)
        async with self.db.engine.connect() as conn:
            # Autocommit: the lock is the session's, and no transaction stays open while it is held.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            try_lock = text("SELECT pg_try_advisory_lock(:k)")
            # Polled, not pg_advisory_lock: a waiter stays cancellable and never blocks a backend.
            while not (await conn.execute(try_lock, {"k": key})).scalar_one():  # noqa: ASYNC110
                await asyncio.sleep(self.poll)
            try:
                yield
            finally:
                try:
                    await asyncio.shield(conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key}))
                except BaseException:
                    # Not released (connection broken, or cancelled twice): never hand a connection
                    # holding the lock back to the pool.
                    await conn.invalidate()
                    raise

    def _lock_file(self, batch_id: str) -> Path:
        return self.lock_dir / f"batch-{batch_id}.lock"

    @contextlib.asynccontextmanager
    async def _flock(self, batch_id: str) -> AsyncIterator[None]:
        path = self._lock_file(batch_id)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(self.poll)
            yield
        finally:
            os.close(fd)  # releases the lock

    def forget(self, batch_id: str) -> None:
        """The batch is final: its lock file (SQLite) is no longer needed. Called while holding it."""
        self._lock_file(batch_id).unlink(missing_ok=True)


def claims_of(ctx: ServiceContext) -> BatchClaims:
    """The process's batch claims (one per service context)."""
    claims: Any = ctx.extras.get("feed_claims")
    if claims is None:
        claims = ctx.extras["feed_claims"] = BatchClaims(ctx.db, spool_dir(ctx.settings))
    return claims  # type: ignore[no-any-return]
