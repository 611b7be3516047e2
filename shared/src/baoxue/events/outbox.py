"""The transactional outbox: events are rows written in the same transaction as the state change."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from sqlalchemy import event as sa_event
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from baoxue.db import utcnow
from baoxue.events.envelope import Envelope, EventData
from baoxue.events.tables import EventTables
from baoxue.observability import current_trace_id

_NUDGE_FLAG = "baoxue_outbox_nudge"


class Outbox:
    """Writes events into the caller's transaction and nudges the relay after commit.

    >>> await outbox.add(session, ChildRegistered(child_id=c.id, ...), subject=c.id, sequence=c.version)
    """

    def __init__(self, tables: EventTables) -> None:
        self.table = tables.outbox
        self.committed = asyncio.Event()

    def _rows(self, items: Iterable[tuple[EventData, str, int]]) -> list[dict[str, object]]:
        trace_id = current_trace_id()
        now = utcnow()
        rows = []
        for data, subject, sequence in items:
            env = Envelope.wrap(data, subject=subject, sequence=sequence, trace_id=trace_id)
            rows.append(
                {
                    "event_id": env.id,
                    "subject": data.relative_subject(),
                    "event_type": env.type,
                    "aggregate_id": subject,
                    "envelope": env.model_dump_json(),
                    "trace_id": trace_id,
                    "created_at": now,
                    "published_at": None,
                    "attempts": 0,
                }
            )
        return rows

    async def add(self, session: AsyncSession, data: EventData, *, subject: str, sequence: int) -> str:
        """Add one event to ``session``'s transaction; returns the event id. Published only if it commits."""
        ids = await self.add_many(session, [(data, subject, sequence)])
        return ids[0]

    async def add_many(
        self, session: AsyncSession | AsyncConnection, items: Iterable[tuple[EventData, str, int]]
    ) -> Sequence[str]:
        """Add many events with one multi-row insert (bulk paths); returns their ids in order."""
        rows = self._rows(items)
        if not rows:
            return []
        await session.execute(insert(self.table), rows)
        self._nudge_after_commit(session)
        return [str(r["event_id"]) for r in rows]

    def _nudge_after_commit(self, session: AsyncSession | AsyncConnection) -> None:
        target = session.sync_session if isinstance(session, AsyncSession) else session.sync_connection
        event_name = "after_commit" if isinstance(session, AsyncSession) else "commit"
        if target is None or target.info.get(_NUDGE_FLAG):
            return
        target.info[_NUDGE_FLAG] = True

        def on_commit(*_: object) -> None:
            target.info.pop(_NUDGE_FLAG, None)
            self.committed.set()

        sa_event.listen(target, event_name, on_commit, once=True)
