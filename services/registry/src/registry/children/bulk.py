"""Bulk writes inside the caller's transaction: ``COPY`` on PostgreSQL, one ``executemany`` on SQLite.

A multi-row ``executemany`` through psycopg is a pipelined ``INSERT`` per row (one parse/bind/execute
each, ≈ 100 µs a row); ``COPY … FROM STDIN`` on the same connection, inside the same transaction, moves
the same rows for a fraction of that. SQLite runs in process, where ``executemany`` is already the
cheapest path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection as PgConnection
from psycopg import sql
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _driver_connection(session: AsyncSession) -> PgConnection[Any]:
    """The psycopg connection under the session's connection (same transaction)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if not isinstance(driver, PgConnection):
        raise TypeError("COPY needs the psycopg driver")
    return driver


async def copy_rows(
    session: AsyncSession, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows`` (tuples in ``columns`` order) on the session's connection.

    PostgreSQL only. Values are adapted by psycopg's text dumpers (``str``, ``int``, ``bool``, ``date``,
    aware ``datetime``, ``None`` → NULL), so what the column types' bind processing does (UTC times)
    must already be done by the caller.
    """
    driver = await _driver_connection(session)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    async with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys): ``COPY`` on PostgreSQL, one ``executemany`` on SQLite."""
    if not rows:
        return
    if not is_postgresql(session):
        await session.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    await copy_rows(session, table, columns, ([r[c] for c in columns] for r in rows))
