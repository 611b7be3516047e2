"""The audit log: every read and write of personal data, append-only and hash-chained.

Request paths only append an entry (cheap, inside the caller's transaction, so an aborted request
leaves no trace of a read that never happened). A sealer then chains entries in the order it sees
them: ``hash = SHA-256(prev_hash || canonical entry)``. Editing or deleting a sealed entry breaks every
later hash, which :func:`verify_chain` finds.

Deleting the *newest* entries leaves a shorter chain that is still consistent; to find that, the
sealer logs the chain head (index and hash, no personal data) after every batch, and
``verify_chain(anchor=(index, hash))`` checks that a head recorded elsewhere is still in the chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    bindparam,
    column,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from baoxue.auth.principal import Principal
from baoxue.db import Database, UTCDateTime, utcnow
from baoxue.observability import current_trace_id

log = logging.getLogger(__name__)

SEAL_YIELD_EVERY = 100
"""Entries hashed between two yields to the event loop while sealing. A batch of 1,000 held the loop for
17–19 ms (B4's read, bench/notes/b4.md): every request arriving meanwhile waited that long."""

Position = BigInteger().with_variant(Integer(), "sqlite")
GENESIS = "0" * 64


def define_audit_table(metadata: MetaData) -> Table:
    table = Table(
        "audit_log",
        metadata,
        Column("position", Position, primary_key=True, autoincrement=True),
        Column("at", UTCDateTime, nullable=False),
        Column("actor", String(100), nullable=False),
        Column("actor_org", String(32), nullable=False),
        Column("roles", String(200), nullable=False),
        Column("action", String(40), nullable=False),
        Column("resource_type", String(60), nullable=False),
        Column("resource_ids", Text, nullable=False),
        Column("purpose", String(200)),
        Column("detail", Text),
        Column("trace_id", String(32)),
        Column("chain_index", BigInteger, unique=True),
        Column("prev_hash", String(64)),
        Column("hash", String(64)),
    )
    Index("ix_audit_log_unsealed", table.c.chain_index, table.c.position)
    return table


_ENTRY_COLUMNS = (
    "at",
    "actor",
    "actor_org",
    "roles",
    "action",
    "resource_type",
    "resource_ids",
    "purpose",
    "detail",
    "trace_id",
)


def _canonical(row: dict[str, object]) -> bytes:
    """The bytes an entry's hash covers: its fields as text, and an empty field as JSON ``null`` (not the
    text ``"None"``, which an edit could have put in its place unnoticed)."""
    fields = ("position", *_ENTRY_COLUMNS, "chain_index")
    return json.dumps(
        {k: None if row[k] is None else str(row[k]) for k in fields}, sort_keys=True, ensure_ascii=False
    ).encode()


@dataclass(frozen=True)
class ChainReport:
    entries: int
    unsealed: int
    first_broken_position: int | None
    anchor_missing: bool = False
    head: tuple[int, str] | None = None
    """The last sealed entry's chain index and hash: log it, and verify later with it as the anchor."""

    @property
    def intact(self) -> bool:
        return self.first_broken_position is None and not self.anchor_missing


class AuditLog:
    """Appends audit entries and seals them into the hash chain."""

    def __init__(self, table: Table) -> None:
        self.table = table
        links = (
            func.unnest(
                bindparam("pos", type_=ARRAY(BigInteger)),
                bindparam("idx", type_=ARRAY(BigInteger)),
                bindparam("prev", type_=ARRAY(String(64))),
                bindparam("digest", type_=ARRAY(String(64))),
            )
            .table_valued(
                column("pos", BigInteger),
                column("idx", BigInteger),
                column("prev", String(64)),
                column("digest", String(64)),
            )
            .render_derived(name="v")
        )
        self._links_statement = (
            update(table)
            .where(table.c.position == links.c.pos)
            .values(chain_index=links.c.idx, prev_hash=links.c.prev, hash=links.c.digest)
        )

    async def record(
        self,
        session: AsyncSession,
        principal: Principal,
        action: str,
        resource_type: str,
        resource_ids: Iterable[str],
        *,
        purpose: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append one entry: who did ``action`` to which resources, when, and for what stated purpose.

        ``detail`` names fields or counts, never values of personal data. An entry made under a
        break-glass grant is marked ``breakglass:<grant id>`` in ``detail``.
        """
        await session.execute(
            insert(self.table).values(
                **self.entry(
                    principal, action, resource_type, ",".join(resource_ids), purpose=purpose, detail=detail
                )
            )
        )

    def entry(
        self,
        principal: Principal,
        action: str,
        resource_type: str,
        resource_ids: str,
        *,
        purpose: str | None = None,
        detail: str | None = None,
    ) -> dict[str, object]:
        """The column values of one entry (``resource_ids`` comma-separated), break-glass marking included."""
        from baoxue.breakglass import grant_of

        grant = grant_of(principal)
        if grant is not None:
            detail = f"breakglass:{grant.id}" + (f"; {detail}" if detail else "")
        return {
            "at": utcnow(),
            "actor": principal.subject,
            "actor_org": principal.org,
            "roles": ",".join(sorted(principal.roles)),
            "action": action,
            "resource_type": resource_type,
            "resource_ids": resource_ids,
            "purpose": purpose if purpose is not None else principal.purpose,
            "detail": detail,
            "trace_id": current_trace_id(),
        }

    def audited_select(self, query: Select[Any], id_column: str = "id") -> Select[Any]:
        """``query`` and its audit entry as one PostgreSQL statement: the rows ``query`` finds, and (as a
        data-modifying CTE) one entry naming them (their ``id_column``), written only when it finds any.

        Build it once (its parameters are bound names) and execute it with ``query``'s parameters and
        :meth:`entry_params`. Run on an autocommit connection (:meth:`baoxue.db.Database.autocommit`) it
        is its own transaction: the read and its entry commit together, and the entry is durable before
        ``execute`` returns (before any response is sent). One round trip instead of ``BEGIN``,
        ``SELECT``, ``INSERT``, ``COMMIT``. PostgreSQL only (SQLite has no data-modifying CTEs): there
        run ``query`` and :meth:`record` in one transaction.
        """
        t = self.table
        found = query.cte("audited_rows")
        names = [c for c in _ENTRY_COLUMNS if c != "resource_ids"]
        source = (
            select(
                *(bindparam(f"audit_{name}", type_=t.c[name].type).label(name) for name in names),
                func.string_agg(found.c[id_column], literal(",", String())).label("resource_ids"),
            )
            .select_from(found)
            .having(func.count() > 0)
        )
        logged = insert(t).from_select([*names, "resource_ids"], source).cte("audit_entry")
        return select(found).add_cte(logged)

    def entry_params(
        self,
        principal: Principal,
        action: str,
        resource_type: str,
        *,
        purpose: str | None = None,
        detail: str | None = None,
    ) -> dict[str, object]:
        """The audit parameters of an :meth:`audited_select` statement."""
        values = self.entry(principal, action, resource_type, "", purpose=purpose, detail=detail)
        return {f"audit_{name}": value for name, value in values.items() if name != "resource_ids"}

    async def seal(self, db: Database, *, batch: int = 1000) -> int:
        """Chain unsealed entries; returns how many were sealed. Run by one task per service."""
        t = self.table
        async with db.transaction() as session:
            last = (
                await session.execute(
                    select(t.c.chain_index, t.c.hash)
                    .where(t.c.chain_index.is_not(None))
                    .order_by(t.c.chain_index.desc())
                    .limit(1)
                )
            ).first()
            index, prev = (last.chain_index, last.hash) if last else (0, GENESIS)
            rows = (
                (
                    await session.execute(
                        select(t).where(t.c.chain_index.is_(None)).order_by(t.c.position).limit(batch)
                    )
                )
                .mappings()
                .all()
            )
            links: list[dict[str, object]] = []
            for row in rows:
                index += 1
                entry = dict(row) | {"chain_index": index}
                digest = hashlib.sha256(prev.encode() + _canonical(entry)).hexdigest()
                links.append({"pos": row["position"], "idx": index, "prev": prev, "digest": digest})
                prev = digest
                if len(links) % SEAL_YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let requests run: a full batch hashes for ~15–20 ms
            if links:
                await self._write_links(session, links, postgresql=db.dialect == "postgresql")
        if rows:
            log.info("audit chain head", extra={"chain_index": index, "chain_hash": prev})
        return len(rows)

    async def _write_links(
        self, session: AsyncSession, links: list[dict[str, object]], *, postgresql: bool
    ) -> None:
        """Store a batch's chain links in one statement: ``UPDATE … FROM unnest(arrays)`` on PostgreSQL
        (four array parameters, so the statement is the same for every batch: compiled once and
        prepared by the driver, where a ``VALUES`` list was a new statement of up to 4,000 parameters
        to compile per batch), one ``executemany`` on SQLite (no arrays)."""
        t = self.table
        if postgresql:
            await session.execute(
                self._links_statement,
                {
                    "pos": [link["pos"] for link in links],
                    "idx": [link["idx"] for link in links],
                    "prev": [link["prev"] for link in links],
                    "digest": [link["digest"] for link in links],
                },
            )
            return
        await session.execute(
            update(t)
            .where(t.c.position == bindparam("pos"))
            .values(chain_index=bindparam("idx"), prev_hash=bindparam("prev"), hash=bindparam("digest")),
            links,
        )

    async def head(self, db: Database) -> tuple[int, str] | None:
        """The newest sealed entry's (chain index, hash): an anchor to keep outside the database."""
        t = self.table
        async with db.transaction() as session:
            row = (
                await session.execute(
                    select(t.c.chain_index, t.c.hash)
                    .where(t.c.chain_index.is_not(None))
                    .order_by(t.c.chain_index.desc())
                    .limit(1)
                )
            ).first()
        return (int(row.chain_index), str(row.hash)) if row else None

    async def verify_chain(self, db: Database, *, anchor: tuple[int, str] | None = None) -> ChainReport:
        """Walk the chain from the start; report the first entry whose hash does not follow.

        With ``anchor`` (a head logged earlier), also report when that entry is no longer in the chain
        (the newest entries were deleted).
        """
        t = self.table
        anchor_seen = anchor is None
        prev, expected_index, count = GENESIS, 1, 0
        async with db.transaction() as session:
            unsealed = (
                await session.execute(select(func.count()).where(t.c.chain_index.is_(None)))
            ).scalar_one()
            result = await session.stream(
                select(t).where(t.c.chain_index.is_not(None)).order_by(t.c.chain_index)
            )
            async for row in result.mappings():
                count += 1
                entry = dict(row)
                digest = hashlib.sha256(prev.encode() + _canonical(entry)).hexdigest()
                if row["chain_index"] != expected_index or row["prev_hash"] != prev or row["hash"] != digest:
                    return ChainReport(count, int(unsealed), int(row["position"]))
                anchor_seen = anchor_seen or (anchor is not None and (expected_index, digest) == anchor)
                prev, expected_index = digest, expected_index + 1
        head = (expected_index - 1, prev) if count else None
        return ChainReport(count, int(unsealed), None, anchor_missing=not anchor_seen, head=head)


def id_list(ids: Sequence[object]) -> list[str]:
    return [str(i) for i in ids]
