"""Queries of the children read model (set-based upserts; stale sequences never overwrite newer ones)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    FromClause,
    Integer,
    String,
    Table,
    Update,
    bindparam,
    case,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.db import ConflictInsert, conflict_insert
from enrollment.children.models import ChildView

_T = ChildView.__table__  # type: ignore[attr-defined]


def _replaced(ins: ConflictInsert, values: dict[str, Any]) -> dict[str, Any]:
    """What a newer snapshot replaces: every column it carries, except ``merged_into``, which snapshots do
    not carry (ChildStatusChanged does): a record still ``duplicate`` keeps the record it names, one that
    is not (a merge undone) names none."""
    changed: dict[str, Any] = {k: ins.excluded[k] for k in values if k not in ("child_id", "merged_into")}
    changed["merged_into"] = case((ins.excluded.status == "duplicate", _T.c.merged_into), else_=None)
    return changed


async def upsert_snapshot(session: AsyncSession, values: dict[str, Any], *, dialect: str) -> bool:
    """Insert or replace a child's row unless the stored sequence is newer; True if applied."""
    ins = conflict_insert(dialect, _T).values(values)
    stmt = ins.on_conflict_do_update(
        index_elements=["child_id"], set_=_replaced(ins, values), where=_T.c.sequence < ins.excluded.sequence
    ).returning(_T.c.child_id)
    return (await session.execute(stmt)).first() is not None


async def upsert_snapshots(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, dialect: str
) -> set[str]:
    """:func:`upsert_snapshot` of many children in one statement; returns the ids of the rows applied.

    Each child at most once per call (one ``INSERT … ON CONFLICT`` cannot touch a row twice; the
    caller applies a child's second event in a second call). Executed with the list of rows, so
    SQLAlchemy sends multi-row VALUES pages from one cached compilation.
    """
    if not rows:
        return set()
    ins = conflict_insert(dialect, _T)
    stmt = ins.on_conflict_do_update(
        index_elements=["child_id"], set_=_replaced(ins, rows[0]), where=_T.c.sequence < ins.excluded.sequence
    ).returning(_T.c.child_id)
    return set((await session.execute(stmt, list(rows))).scalars())


def rows_source(
    dialect: str, columns: Sequence[tuple[str, type[String] | type[Integer]]], rows: Sequence[Sequence[Any]]
) -> FromClause:
    """A derived table ``v`` of ``rows`` (columns named as given), for :func:`update_from`.

    PostgreSQL: ``unnest`` of one array parameter per column; SQLite: a materialised CTE over
    ``json_each`` of one JSON parameter. Either way the statement's text does not depend on the number
    of rows.
    """
    if dialect == "postgresql":
        arrays = [
            bindparam(f"v_{name}", [row[i] for row in rows], type_=ARRAY(kind()))
            for i, (name, kind) in enumerate(columns)
        ]
        return func.unnest(*arrays).table_valued(*(name for name, _ in columns)).render_derived(name="v")
    each = func.json_each(bindparam("v_rows", json.dumps([list(r) for r in rows]))).table_valued("value")
    each = each.alias("v_json")
    return (
        select(
            *(func.json_extract(each.c.value, f"$[{i}]").label(name) for i, (name, _) in enumerate(columns))
        )
        .cte("v")
        .prefix_with("MATERIALIZED")
    )


def update_from(
    table: Table,
    v: FromClause,
    dialect: str,
    *,
    key: tuple[str, str],
    where: Sequence[ColumnElement[bool]] = (),
    from_v: Mapping[str, str],
    values: Mapping[str, Any] | None = None,
) -> Update:
    """``UPDATE table`` for the rows whose ``key[0]`` equals ``v.key[1]`` (one row of ``v`` per key),
    setting each column of ``from_v`` to its ``v`` column (and ``values`` as given).

    PostgreSQL: ``UPDATE … FROM v`` (a join). SQLite: ``WHERE key IN (SELECT … FROM v)`` with each
    column from a correlated subquery of ``v``: SQLite's plan of ``UPDATE … FROM`` a ``json_each`` (or
    a CTE) scans the whole table once per row of ``v``, this one scans or searches it once.
    """
    column = table.c[key[0]]
    if dialect == "postgresql":
        stmt = update(table).where(column == v.c[key[1]], *where)
        return stmt.values({**{name: v.c[source] for name, source in from_v.items()}, **(values or {})})
    mine = v.c[key[1]] == column
    return (
        update(table)
        .where(column.in_(select(v.c[key[1]])), *where)
        .values(
            {
                **{
                    name: select(v.c[source]).where(mine).scalar_subquery() for name, source in from_v.items()
                },
                **(values or {}),
            }
        )
    )


async def set_status(
    session: AsyncSession, *, child_id: str, status: str, merged_into: str | None, sequence: int
) -> bool:
    """Apply a registry status change if it is newer than what is stored; True if applied."""
    result = await session.execute(
        update(_T)
        .where(_T.c.child_id == child_id, _T.c.sequence < sequence)
        .values(status=status, merged_into=merged_into, sequence=sequence)
        .returning(_T.c.child_id)
    )
    return result.first() is not None


async def set_statuses(
    session: AsyncSession, changes: Sequence[tuple[str, str, str | None, int]], *, dialect: str
) -> set[str]:
    """:func:`set_status` of many children, ``(child_id, status, merged_into, sequence)``, in one
    ``UPDATE … FROM``; each child at most once per call. Returns the ids of the rows applied."""
    if not changes:
        return set()
    v = rows_source(dialect, [("c", String), ("s", String), ("m", String), ("q", Integer)], changes)
    newer = _T.c.sequence < (
        v.c.q if dialect == "postgresql" else select(v.c.q).where(v.c.c == _T.c.child_id).scalar_subquery()
    )
    stmt = update_from(
        _T,
        v,
        dialect,
        key=("child_id", "c"),
        where=[newer],
        from_v={"status": "s", "merged_into": "m", "sequence": "q"},
    )
    result = await session.execute(stmt.returning(_T.c.child_id))
    return set(result.scalars())


async def get(session: AsyncSession, child_id: str) -> ChildView | None:
    return (
        await session.execute(select(ChildView).where(col(ChildView.child_id) == child_id))
    ).scalar_one_or_none()


async def by_blind_index(session: AsyncSession, blind_index: str) -> ChildView | None:
    """The active child with this ID blind index (the first one if the registry still holds duplicates)."""
    rows = await session.execute(
        select(ChildView)
        .where(col(ChildView.id_blind_index) == blind_index)
        .order_by((col(ChildView.status) != "active"), col(ChildView.child_id))  # type: ignore[arg-type]
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def clear(session: AsyncSession) -> int:
    result = await session.execute(delete(_T).returning(_T.c.child_id))
    return len(result.all())
