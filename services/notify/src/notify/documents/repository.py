"""Queries of the documents domain: the gapless counter, look-ups and lists."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from baoxue.auth.jurisdiction import within_jurisdiction
from baoxue.auth.principal import Principal
from baoxue.db import conflict_insert
from notify.documents.models import Document, DocumentCounter

COUNTERS = DocumentCounter.__table__  # type: ignore[attr-defined]


async def next_seq(session: AsyncSession, issuing_org: str, year: int) -> int:
    """The next number of (issuing_org, year), taken inside the caller's transaction.

    The counter row is locked by the UPDATE until the transaction ends: concurrent issuers queue, a
    rolled-back issue gives its number back, so numbers never repeat and never skip.
    """
    await session.execute(
        conflict_insert(session, COUNTERS)
        .values(issuing_org=issuing_org, year=year, last_seq=0)
        .on_conflict_do_nothing()
    )
    result = await session.execute(
        update(COUNTERS)
        .where(COUNTERS.c.issuing_org == issuing_org, COUNTERS.c.year == year)
        .values(last_seq=COUNTERS.c.last_seq + 1)
        .returning(COUNTERS.c.last_seq)
    )
    return int(result.scalar_one())


async def get(session: AsyncSession, document_id: str) -> Document | None:
    return await session.get(Document, document_id)


async def latest_version(session: AsyncSession, doc: Document) -> int:
    statement = select(func.max(col(Document.version))).where(
        col(Document.issuing_org) == doc.issuing_org,
        col(Document.year) == doc.year,
        col(Document.seq) == doc.seq,
    )
    return int((await session.execute(statement)).scalar_one())


async def versions(session: AsyncSession, doc: Document) -> list[Document]:
    statement = (
        select(Document)
        .where(
            col(Document.issuing_org) == doc.issuing_org,
            col(Document.year) == doc.year,
            col(Document.seq) == doc.seq,
        )
        .order_by(col(Document.version))
    )
    return list((await session.execute(statement)).scalars())


async def for_escalation(session: AsyncSession, escalation_id: str) -> list[Document]:
    statement = (
        select(Document)
        .where(col(Document.escalation_id) == escalation_id)
        .order_by(col(Document.created_at))
    )
    return list((await session.execute(statement)).scalars())


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    after: str | None,
    limit: int,
    kind: str | None,
    case_id: str | None,
    year: int | None,
) -> list[Document]:
    statement = select(Document).where(
        within_jurisdiction(principal, col(Document.issuing_org), col(Document.recipient_org))
    )
    if kind:
        statement = statement.where(col(Document.kind) == kind)
    if case_id:
        statement = statement.where(col(Document.case_id) == case_id)
    if year:
        statement = statement.where(col(Document.year) == year)
    if after:
        statement = statement.where(col(Document.id) > after)
    return list((await session.execute(statement.order_by(col(Document.id)).limit(limit + 1))).scalars())
