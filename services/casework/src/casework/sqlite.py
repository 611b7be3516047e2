"""SQLite (development and tests): transactions begin with ``BEGIN IMMEDIATE``.

A request that reads and then writes must not start as a WAL reader: if another connection (the
outbox relay, the audit sealer) commits in between, SQLite refuses the upgrade at once with "database
is locked" (a stale snapshot), and the busy timeout does not help. Taking the write lock at BEGIN makes
such transactions wait for each other instead, and lets SAVEPOINTs work as SQLAlchemy expects
(pysqlite's own transaction handling is switched off). PostgreSQL is untouched. Generic: a candidate
for ``baoxue.db``.
"""

from typing import Any

from sqlalchemy import event

from baoxue.service import ServiceContext


def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


async def begin_immediate_on_sqlite(ctx: ServiceContext) -> None:
    """on_startup hook: install the listeners, then drop pooled connections made before them."""
    if ctx.db.dialect != "sqlite":
        return
    engine = ctx.db.engine.sync_engine
    if not event.contains(engine, "begin", _begin_immediate):
        event.listen(engine, "connect", _no_driver_transactions)
        event.listen(engine, "begin", _begin_immediate)
    await ctx.db.engine.dispose()
