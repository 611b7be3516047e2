"""Changing the blind-index key: every stored blind index recomputed under a new key, in every service.

A blind index (``BlindIndex``, HMAC-SM3) is compared across services: the registry's ``children.id_blind``
is what enrollment's read model of children, its student records and casework's cases are matched on. So
a new key must replace the old one in every service's database at once, while nothing writes (a
maintenance window; ``docs/operations.md`` has the procedure), and every service then starts with it.

Each service declares the columns that hold blind indexes (``ServiceSpec.blind_index_columns``):

- a column with a ``source`` holds the index of the value encrypted in another column of the same row
  (the ID number's token beside its index). Its rows are *recomputed*: the token is decrypted and the
  value's index taken under the old and the new key; the stored index must be one of the two (else
  the row is reported and left alone), and the pair old → new goes into one translation map;
- every declared column (with a source or without: read models filled from events, the provincial
  platform's records) is then *translated* through that map, one set-based ``UPDATE … FROM`` per
  column, each service's columns in one transaction.

The map is made from the plaintexts, so running again after an interruption is safe: values already
under the new key are not in the map's old side and stay; the rest are translated. A stored index that
no token of any service gives (a provincial record of a child unknown here) cannot be recomputed: it is
counted as *unknown* and left, and matches nothing under the new key until its source sends it again.

Memory: the map holds one pair per distinct value (≈ 250 bytes each: 60,000 children with phones and
student numbers ≈ 50 MB; 12 million ≈ 3 GB).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, ColumnElement, MetaData, String, Table, exists, func, insert, select, update

from baoxue.db import Database
from baoxue.pii.crypto import BlindIndex, FieldCipher, PiiCryptoError
from baoxue.pii.rotation import EncryptedColumn, next_page

_CHUNK = 5000  # map pairs per INSERT into the translation table

# The translation map, as a temporary table of the transaction's connection (both databases).
_map = Table(
    "baoxue_blind_index_map",
    MetaData(),
    Column("old", String(128), primary_key=True),
    Column("new", String(128), nullable=False, unique=True),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class BlindIndexColumn:
    """A column of blind indexes, and where its values come from.

    ``source``: the encrypted column of the same row whose plaintext the index was computed from (the
    rows with a token are recomputed; rows without one are translated like any copy). None: the values
    are copies of indexes computed elsewhere (events, a platform's import), translated only.
    ``only_rows_with_source``: the column holds blind indexes only in rows whose source is set (the
    registry's provenance keeps plain values in the same column for other attributes).
    """

    table: Table
    column: str
    source: EncryptedColumn | None = None
    only_rows_with_source: bool = False

    def __post_init__(self) -> None:
        if self.column not in self.table.c:
            raise ValueError(f"{self.table.name} has no column {self.column!r}")
        if self.source is not None and self.source.table is not self.table:
            raise ValueError(f"{self.name}: the source must be a column of the same table")
        if self.only_rows_with_source and self.source is None:
            raise ValueError(f"{self.name}: only_rows_with_source needs a source")

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"

    def rows(self) -> ColumnElement[bool]:
        """The rows whose value in this column is a blind index."""
        value = self.table.c[self.column].is_not(None)
        if self.only_rows_with_source:
            assert self.source is not None
            return value & self.table.c[self.source.column].is_not(None)
        return value


@dataclass
class ColumnReindex:
    """What one run did to one column.

    ``recomputed``: rows whose index was taken again from their decrypted token; ``rewritten``: values
    this run replaced with the new key's; ``current``: values under the new key after the run (all of the
    column's values, unless some are unknown); ``unknown``: values no token of any service gives (left
    as they are); ``failed``: rows whose token did not decrypt or whose stored index is the value's under
    neither key (left as they are; their first keys, surrogate ids only, in ``failed_keys``).
    """

    column: str
    recomputed: int = 0
    rewritten: int = 0
    current: int = 0
    unknown: int = 0
    failed: int = 0
    failed_keys: list[tuple[Any, ...]] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.column}: {self.rewritten} rewritten, {self.current} under the new key"
        if self.unknown:
            text += f", {self.unknown} unknown (no token gives them; left as they are)"
        if self.failed:
            text += f", {self.failed} failed"
        return text


class BlindIndexMap:
    """Old index → new index of every plaintext met, from the recomputed columns of every service."""

    def __init__(self, old: BlindIndex, new: BlindIndex) -> None:
        if old.same_key_as(new):
            raise ValueError("the new blind-index key is the current one")
        self.old, self.new = old, new
        self.pairs: dict[str, str] = {}

    def add(self, plaintext: str) -> tuple[str, str]:
        pair = (self.old.of(plaintext), self.new.of(plaintext))
        self.pairs[pair[0]] = pair[1]
        return pair

    def __len__(self) -> int:
        return len(self.pairs)


async def recompute(
    db: Database,
    cipher: FieldCipher,
    target: BlindIndexColumn,
    index_map: BlindIndexMap,
    *,
    batch: int = 1000,
    progress: Callable[[ColumnReindex], None] | None = None,
) -> ColumnReindex:
    """Read ``target``'s rows with a token, ``batch`` at a time in key order, and add each value's pair to
    ``index_map``. Writes nothing. Rows whose stored index is the value's under neither key, or whose
    token does not decrypt, are counted as failed."""
    if target.source is None:
        raise ValueError(f"{target.name} has no source to recompute from")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    source, t = target.source, target.table
    keys = [t.c[k] for k in source.key_columns]
    extra = [t.c[c] for c in source.aad_columns if c not in source.key_columns]
    token_col, index_col = t.c[source.column], t.c[target.column]
    report = ColumnReindex(target.name)
    last: tuple[Any, ...] | None = None
    while True:
        wanted = select(*keys, *extra, token_col, index_col).where(
            token_col.is_not(None), index_col.is_not(None)
        )
        query = next_page(wanted, keys, last, batch)
        async with db.transaction() as session:
            rows = (await session.execute(query)).mappings().all()
        if not rows:
            return report
        for row in rows:
            try:
                plaintext = cipher.decrypt(row[token_col.key], associated_data=source.aad_for(dict(row)))
            except PiiCryptoError:
                plaintext = None
            if plaintext is None or row[index_col.key] not in index_map.add(plaintext):
                report.failed += 1
                if len(report.failed_keys) < 20:
                    report.failed_keys.append(tuple(row[k.key] for k in keys))
            else:
                report.recomputed += 1
        last = tuple(rows[-1][k.key] for k in keys)
        if progress is not None:
            progress(report)


async def translate(
    db: Database, columns: list[BlindIndexColumn], index_map: BlindIndexMap, reports: dict[str, ColumnReindex]
) -> None:
    """Replace every old index in ``columns`` with its new one, in one transaction of ``db``; fill each
    column's ``rewritten``, ``current`` and ``unknown`` in ``reports`` (by column name)."""
    pairs = [{"old": old, "new": new} for old, new in index_map.pairs.items()]
    async with db.transaction() as session:
        await session.run_sync(lambda s: _map.drop(s.connection(), checkfirst=True))
        await session.run_sync(lambda s: _map.create(s.connection()))
        for start in range(0, len(pairs), _CHUNK):
            await session.execute(insert(_map), pairs[start : start + _CHUNK])
        for target in columns:
            t, col = target.table, target.table.c[target.column]
            report = reports.setdefault(target.name, ColumnReindex(target.name))
            result = await session.execute(
                update(t).where(target.rows(), col == _map.c.old).values({col.key: _map.c.new})
            )
            report.rewritten = result.rowcount  # type: ignore[attr-defined]
            known = exists().where(_map.c.new == col)
            counts = (
                select(func.count().filter(known), func.count().filter(~known))
                .select_from(t)
                .where(target.rows())
            )
            report.current, report.unknown = (await session.execute(counts)).one()
        await session.run_sync(lambda s: _map.drop(s.connection()))
