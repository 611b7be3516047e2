"""Key rotation for encrypted columns: re-encrypt every value under the active key, in batches.

Rotation in three steps: add the new key id to ``PII_KEYS`` (old ids stay, so reads keep working),
switch ``PII_ACTIVE_KEY_ID`` to it (new writes use it), then run ``baoxue pii rotate`` until it
reports nothing left; only then may the old key be removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Table, select, update

from baoxue.db import Database
from baoxue.pii.crypto import FieldCipher


@dataclass(frozen=True)
class EncryptedColumn:
    """An encrypted column and the primary-key column that identifies its rows."""

    table: Table
    column: str
    key: str = "id"


async def rotate_column(
    db: Database, cipher: FieldCipher, target: EncryptedColumn, *, batch: int = 1000
) -> int:
    """Re-encrypt values of ``target`` not under the active key; returns how many were rewritten."""
    t, col, key = target.table, target.table.c[target.column], target.table.c[target.key]
    rewritten = 0
    last = None
    while True:
        query = select(key, col).where(col.is_not(None)).order_by(key).limit(batch)
        if last is not None:
            query = query.where(key > last)
        async with db.transaction() as session:
            rows = (await session.execute(query)).all()
            if not rows:
                return rewritten
            for row_key, token in rows:
                if cipher.needs_rotation(token):
                    await session.execute(
                        update(t).where(key == row_key).values({col.key: cipher.rotate(token)})
                    )
                    rewritten += 1
            last = rows[-1][0]


async def rotate_all(
    db: Database, cipher: FieldCipher, columns: Sequence[EncryptedColumn], *, batch: int = 1000
) -> dict[str, int]:
    return {f"{c.table.name}.{c.column}": await rotate_column(db, cipher, c, batch=batch) for c in columns}
