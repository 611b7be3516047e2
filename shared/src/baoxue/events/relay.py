"""The outbox relay: publishes committed outbox rows to JetStream, at least once, in order of writing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.db import Database, utcnow
from baoxue.events.bus import EventBus
from baoxue.events.envelope import nats_subject
from baoxue.events.outbox import Outbox
from baoxue.events.tables import EventTables

log = logging.getLogger(__name__)


MARK_CHUNK = 1000
"""Positions per ``UPDATE … WHERE position IN (…)`` when gathered marks are written (SQLite's limit on
bound parameters is far above it)."""
SQLITE_ROUND_GATHER_SECONDS = 0.025
"""SQLite: the pause after a round that found fewer rows than a batch, before the next round."""
MARK_GATHER_SECONDS = 0.1
"""SQLite: the marker's pause after each mark, so that rounds' positions gather into one transaction: each
mark takes the write lock the service's own writers wait for."""


class OutboxRelay:
    """Moves outbox rows to NATS.

    Each round takes the oldest unpublished rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
    relays can share one outbox), publishes them with ``Nats-Msg-Id`` = event id, waits for every PubAck,
    and marks the acknowledged ones published in the same transaction. A crash between PubAck and the
    mark publishes the row again; JetStream's duplicate window and the consumers' inbox absorb it.
    While NATS is away, rows simply wait: nothing is lost and nothing is skipped.
    """

    def __init__(
        self,
        db: Database,
        tables: EventTables,
        bus: EventBus,
        outbox: Outbox,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        publish_timeout: float = 5.0,
        retention: dt.timedelta = dt.timedelta(days=30),
    ) -> None:
        self.db = db
        self.table = tables.outbox
        self.bus = bus
        self.outbox = outbox
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.retention = retention
        self.published_total = 0
        # In run(): a round's "mark published" (UPDATE + COMMIT) overlaps the next round's select and
        # publish; at most one such mark is in flight. Direct callers of publish_pending() get the
        # whole round, mark included, before it returns.
        self._overlap_marks = False
        self._marking: asyncio.Task[int] | None = None
        self._in_flight: set[int] = set()  # SQLite: positions acknowledged and being marked
        # SQLite in run(): acknowledged positions waiting for the marker task, which marks whatever has
        # gathered in one transaction. SQLite's one write lock is shared with every writer of the
        # service; a mark waiting its turn must not hold up the next round's publishing.
        self._to_mark: list[int] = []
        self._marker: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Relay until cancelled."""
        backoff = self.poll_interval
        last_purge = utcnow()
        self._overlap_marks = True
        try:
            await self._run(backoff, last_purge)
        finally:
            self._overlap_marks = False
            marking, self._marking = self._marking, None
            marker, self._marker = self._marker, None
            for task in (marking, marker):
                if task is not None:
                    # Rows whose mark is cut short are published again later (the inbox absorbs it).
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            self._in_flight.difference_update(self._to_mark)
            self._to_mark.clear()

    async def _run(self, backoff: float, last_purge: dt.datetime) -> None:
        while True:
            # Cleared before the round reads the outbox, never after: a commit that lands while the round
            # runs sets it again, so the relay goes straight into the next round instead of sleeping
            # through a poll interval with that commit's rows unpublished.
            self.outbox.committed.clear()
            try:
                published = await self.publish_pending()
                backoff = self.poll_interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay round failed", extra={"error_type": type(exc).__name__})
                published = 0
                backoff = min(backoff * 2, 5.0)
            if utcnow() - last_purge > dt.timedelta(hours=1):
                with contextlib.suppress(Exception):
                    await self.purge_published()
                last_purge = utcnow()
            if 0 < published < self.batch_size and self.db.dialect == "sqlite":
                # A partial round: let commits gather for the next one. On SQLite the writers share this
                # process and its one write lock; a round per commit starved them (B5: 665 of 1,000
                # writes/s with marks off the rounds' path).
                await asyncio.sleep(SQLITE_ROUND_GATHER_SECONDS)
            if published == 0:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races its timeout.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):
                        await self.outbox.committed.wait()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows; returns how many were acknowledged by JetStream.

        The round is one task: select, publish, wait for the PubAcks, mark. Called from :meth:`run`, it
        returns once the PubAcks are in and leaves the mark (an UPDATE and a COMMIT, on PostgreSQL in the
        transaction that holds the rows' locks) running while the next round selects and publishes: the
        mark was a third of a round on the critical path of every event committed meanwhile. Order is
        kept: a round overlaps only a predecessor whose every row was acknowledged (after a failure the
        next round waits for the mark, which releases the failed rows to be published first), and the
        rows being marked are not selected again (PostgreSQL: still locked, SKIP LOCKED; SQLite: left
        out by position). At most one mark is in flight. On SQLite a fully acknowledged round hands its
        rows to a marker task instead (:meth:`_mark_later`): its one write lock is shared with the
        service's writers, and a round waiting its turn for it held every later event back.
        """
        if not self.bus.is_connected:
            return 0
        previous, self._marking = self._marking, None
        published: asyncio.Future[tuple[int, bool]] = asyncio.get_running_loop().create_future()
        round_task = asyncio.create_task(self._round(published))
        try:
            count, complete = await asyncio.shield(published)
        except BaseException:
            round_task.cancel()
            await asyncio.gather(round_task, return_exceptions=True)
            raise
        finally:
            if previous is not None:
                await self._finish(previous)
        if self._overlap_marks and complete and count:
            self._marking = round_task
        else:
            await round_task
        return count

    async def _finish(self, marking: asyncio.Task[int]) -> None:
        """Wait for a previous round's mark; a failed mark only means those rows are published again."""
        try:
            await marking
        except asyncio.CancelledError:
            if not marking.cancelled():
                raise
        except Exception as exc:
            log.warning("outbox relay mark failed", extra={"error_type": type(exc).__name__})

    async def _round(self, published: asyncio.Future[tuple[int, bool]]) -> int:
        try:
            return await self._select_publish_mark(published)
        except BaseException as exc:
            if not published.done():
                if isinstance(exc, asyncio.CancelledError):
                    published.cancel()
                else:
                    published.set_exception(exc)
            raise

    async def _select_publish_mark(self, published: asyncio.Future[tuple[int, bool]]) -> int:
        t = self.table
        query = (
            select(t.c.position, t.c.event_id, t.c.subject, t.c.envelope, t.c.trace_id)
            .where(t.c.published_at.is_(None))
            .order_by(t.c.position)
            .limit(self.batch_size)
        )
        if self.db.dialect == "postgresql":
            # Row locks held while publishing let several relays share one outbox (SKIP LOCKED).
            async with self.db.transaction() as session:
                rows = (await session.execute(query.with_for_update(skip_locked=True))).all()
                if not rows:
                    published.set_result((0, True))
                    return 0
                acked = await self._publish(rows)
                published.set_result((len(acked), len(acked) == len(rows)))
                await self._mark(session, rows, acked)
        else:
            # SQLite has one writer: never hold a transaction open while waiting for JetStream.
            if self._in_flight:
                query = query.where(t.c.position.not_in(sorted(self._in_flight)))
            async with self.db.transaction() as session:
                rows = (await session.execute(query)).all()
            if not rows:
                published.set_result((0, True))
                return 0
            acked = await self._publish(rows)
            self._in_flight.update(acked)
            complete = len(acked) == len(rows)
            if self._overlap_marks and complete:
                published.set_result((len(acked), True))
                self._mark_later(acked)
            else:
                try:
                    published.set_result((len(acked), complete))
                    async with self.db.transaction() as session:
                        await self._mark(session, rows, acked)
                finally:
                    self._in_flight.difference_update(acked)
        self.published_total += len(acked)
        return len(acked)

    def _mark_later(self, acked: list[int]) -> None:
        """SQLite: hand acknowledged positions to the marker task (started if idle); they stay left out of
        the rounds' selects until marked. Measured in B5 on SQLite, a mark per round on the critical path
        waited behind 16 writers for the write lock (relay stage p99 0.6–1.0 s, bench/notes/b5.md)."""
        self._to_mark.extend(acked)
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark_gathered())

    async def _mark_gathered(self) -> None:
        t = self.table
        while self._to_mark:
            batch, self._to_mark = self._to_mark, []
            try:
                async with self.db.transaction() as session:
                    for start in range(0, len(batch), MARK_CHUNK):
                        chunk = batch[start : start + MARK_CHUNK]
                        await session.execute(
                            update(t).where(t.c.position.in_(chunk)).values(published_at=utcnow())
                        )
            except Exception as exc:  # the rows are selected and published again (the inbox absorbs it)
                log.warning("outbox relay mark failed", extra={"error_type": type(exc).__name__})
            finally:
                self._in_flight.difference_update(batch)
            await asyncio.sleep(MARK_GATHER_SECONDS)  # let the next marks gather: one write lock each

    async def _mark(self, session: AsyncSession, rows: Sequence[Any], acked: list[int]) -> None:
        t = self.table
        if acked:
            await session.execute(update(t).where(t.c.position.in_(acked)).values(published_at=utcnow()))
        done = set(acked)  # once, not per row: a full round of 500 spent 4 ms rebuilding it
        failed = [r.position for r in rows if r.position not in done]
        if failed:
            await session.execute(update(t).where(t.c.position.in_(failed)).values(attempts=t.c.attempts + 1))

    async def _publish(self, rows: Sequence[Any]) -> list[int]:
        js = self.bus.js
        futures: list[asyncio.Future[Any]] = []
        # Pipelined like raw publish_async, without a trip round the event loop per message:
        # ``wait_stall`` would wrap every publish in ``asyncio.wait_for`` (a task and a timer each, so one
        # loop turn per message, seconds per batch on a busy loop). One timeout bounds the whole loop
        # instead; rows it did not reach wait for the next round.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.publish_timeout):
                for row in rows:
                    headers = {"Nats-Msg-Id": row.event_id}
                    if row.trace_id:
                        headers["traceparent"] = f"00-{row.trace_id}-{'0' * 15}1-01"
                    futures.append(
                        await js.publish_async(
                            nats_subject(self.bus.namespace, row.subject),
                            row.envelope.encode(),
                            headers=headers,
                        )
                    )
        if not futures:
            return []
        done, pending = await asyncio.wait(futures, timeout=self.publish_timeout)
        for fut in pending:
            fut.cancel()
        acked = []
        # Stop at the first failure so events of one aggregate are never published out of order.
        for row, fut in zip(rows, futures, strict=False):
            if fut in done and not fut.cancelled() and fut.exception() is None:
                acked.append(row.position)
            else:
                break
        return acked

    async def purge_published(self) -> int:
        """Delete published rows older than the retention period (kept until then for re-driving)."""
        t = self.table
        async with self.db.transaction() as session:
            result = await session.execute(
                delete(t).where(t.c.published_at.is_not(None), t.c.published_at < utcnow() - self.retention)
            )
        return int(getattr(result, "rowcount", 0) or 0)
