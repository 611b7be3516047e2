"""Key rotation for encrypted columns: re-encrypt every value under the active key, in batches.

Rotation in three steps: add the new key id to ``PII_KEYS`` (old ids stay, so reads keep working),
switch ``PII_ACTIVE_KEY_ID`` to it (new writes use it), then run ``baoxue pii rotate`` until it
reports nothing left; only then may the old key be removed.

Each service declares its encrypted columns (``ServiceSpec.encrypted_columns``) with the associated
data it encrypts them with: a constant, or a function of the row (e.g. ``f"documents:{row['id']}"``).
A column is walked in primary-key order (keyset pagination, composite keys too); each batch selects
only the rows whose token is not under the active key and algorithm, decrypts each with the key its
token names, re-encrypts it under the active key with the same associated data, and writes the batch
with one executemany UPDATE in one transaction. An UPDATE only lands while the row still holds the
token that was read, so a value the service rewrote meanwhile (already under the active key) is kept.
An interrupted run loses at most its open batch; running again picks up what is left, and a finished
column reports 0.

Blind indexes (HMAC, ``BlindIndex``) are not touched: they use their own key, changed by
``baoxue pii reindex`` (``baoxue.pii.reindex``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, bindparam, func, or_, select, update

from baoxue.db import Database
from baoxue.pii.crypto import FieldCipher, PiiCryptoError

# Associated data: constant bytes or text (UTF-8), or a function of the row (its key columns and the
# ``aad_columns``) returning bytes or text.
AssociatedData = bytes | str | Callable[[Mapping[str, Any]], bytes | str]


@dataclass(frozen=True)
class EncryptedColumn:
    """An encrypted column, the primary-key column(s) that identify its rows, and its associated data.

    ``key`` is one column name or a tuple of them (composite primary key). ``associated_data`` must be
    exactly what the service passes to ``FieldCipher.encrypt`` for this column: constant, or a callable
    of the row; the row mapping holds the key columns and the ``aad_columns``.
    """

    table: Table
    column: str
    key: str | tuple[str, ...] = "id"
    associated_data: AssociatedData = b""
    aad_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (self.column, *self.key_columns, *self.aad_columns):
            if name not in self.table.c:
                raise ValueError(f"{self.table.name} has no column {name!r}")
        if self.column in self.key_columns:
            raise ValueError(f"{self.name}: the encrypted column cannot be part of the key")

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"

    @property
    def key_columns(self) -> tuple[str, ...]:
        return (self.key,) if isinstance(self.key, str) else tuple(self.key)

    def aad_for(self, row: Mapping[str, Any]) -> bytes:
        """The associated data of ``row`` (a mapping with the key and ``aad_columns`` values)."""
        aad = self.associated_data
        if callable(aad):
            aad = aad(row)
        return aad.encode("utf-8") if isinstance(aad, str) else bytes(aad)


@dataclass
class ColumnRotation:
    """What one run did to one column: tokens rewritten under the active key, tokens that could not be
    decrypted (unknown key, wrong associated data, malformed; left as they are) and rows walked."""

    column: str
    rewritten: int = 0
    failed: int = 0
    batches: int = 0
    failed_keys: list[tuple[Any, ...]] = field(default_factory=list)  # surrogate keys only, first 20

    def __str__(self) -> str:
        failed = f", {self.failed} could not be decrypted" if self.failed else ""
        return f"{self.column}: {self.rewritten} rewritten{failed}"


# Called after each committed batch with the column's running totals (progress reports).
Progress = Callable[[ColumnRotation], None]


def keyset_after(keys: Sequence[ColumnElement[Any]], last: Sequence[Any]) -> ColumnElement[bool]:
    """Rows whose key tuple sorts after ``last``: (a > x) OR (a = x AND b > y) OR … (portable keyset)."""
    clauses = []
    for i, column in enumerate(keys):
        equal_before = [keys[j] == last[j] for j in range(i)]
        clauses.append(and_(*equal_before, column > last[i]))
    return or_(*clauses)


def next_page(
    query: Select[Any], keys: Sequence[ColumnElement[Any]], last: Sequence[Any] | None, size: int
) -> Select[Any]:
    """``query``'s next ``size`` rows in key order after the row keyed ``last`` (the first page for None)."""
    query = query.order_by(*keys).limit(size)
    return query if last is None else query.where(keyset_after(keys, last))


async def rotate_column(
    db: Database,
    cipher: FieldCipher,
    target: EncryptedColumn,
    *,
    batch: int = 1000,
    progress: Progress | None = None,
) -> ColumnRotation:
    """Re-encrypt the values of ``target`` not under the active key and algorithm, ``batch`` rows per
    transaction; return the counts. Safe to run again (and while the service runs)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    t = target.table
    col = t.c[target.column]
    keys = [t.c[k] for k in target.key_columns]
    extra = [t.c[c] for c in target.aad_columns if c not in target.key_columns]
    prefix = cipher.active_prefix
    stale = func.substr(col, 1, len(prefix)) != prefix  # exact (case-sensitive) on both databases
    key_params = [f"_rot_k{i}" for i in range(len(keys))]
    statement = (
        update(t)
        .where(*(k == bindparam(p) for k, p in zip(keys, key_params, strict=True)))
        .where(col == bindparam("_rot_old"))
        .values({col.key: bindparam("_rot_new")})
    )
    report = ColumnRotation(target.name)
    last: tuple[Any, ...] | None = None
    while True:
        query = next_page(select(*keys, *extra, col).where(col.is_not(None), stale), keys, last, batch)
        async with db.transaction() as session:
            rows = (await session.execute(query)).mappings().all()
            if not rows:
                return report
            params = []
            for row in rows:
                token = row[col.key]
                try:
                    if cipher.needs_rotation(token):
                        new = cipher.rotate(token, associated_data=target.aad_for(dict(row)))
                        params.append(
                            {
                                **{p: row[k.key] for p, k in zip(key_params, keys, strict=True)},
                                "_rot_old": token,
                                "_rot_new": new,
                            }
                        )
                except PiiCryptoError:
                    report.failed += 1
                    if len(report.failed_keys) < 20:
                        report.failed_keys.append(tuple(row[k.key] for k in keys))
            if params:
                result = await session.execute(statement, params)
                counted = result.supports_sane_multi_rowcount() and result.rowcount >= 0  # type: ignore[attr-defined]
                report.rewritten += result.rowcount if counted else len(params)  # type: ignore[attr-defined]
            last = tuple(rows[-1][k.key] for k in keys)
        report.batches += 1
        if progress is not None:
            progress(report)


async def rotate_all(
    db: Database,
    cipher: FieldCipher,
    columns: Sequence[EncryptedColumn],
    *,
    batch: int = 1000,
    progress: Progress | None = None,
) -> dict[str, ColumnRotation]:
    """Rotate every declared column in turn; the reports by ``table.column``."""
    return {c.name: await rotate_column(db, cipher, c, batch=batch, progress=progress) for c in columns}


async def count_stale(db: Database, cipher: FieldCipher, target: EncryptedColumn) -> int:
    """How many values of ``target`` are not under the active key and algorithm (0 once rotated)."""
    col = target.table.c[target.column]
    prefix = cipher.active_prefix
    query = select(func.count()).where(col.is_not(None), func.substr(col, 1, len(prefix)) != prefix)
    async with db.transaction() as session:
        return int((await session.execute(query)).scalar_one())
