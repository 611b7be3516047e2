"""The outbox, inbox and dead-letter tables, defined into a service's own metadata."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

from baoxue.db import UTCDateTime

# BIGINT autoincrement on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
Position = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True)
class EventTables:
    outbox: Table
    inbox: Table
    dead_letter: Table


def define_event_tables(metadata: MetaData) -> EventTables:
    """Add ``outbox``, ``inbox`` and ``dead_letter`` to ``metadata`` (one set per service)."""
    outbox = Table(
        "outbox",
        metadata,
        Column("position", Position, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(200), nullable=False, comment="NATS subject without the namespace"),
        Column("event_type", String(200), nullable=False),
        Column("aggregate_id", String(64), nullable=False),
        Column("envelope", Text, nullable=False),
        Column("trace_id", String(32)),
        Column("created_at", UTCDateTime, nullable=False),
        Column("published_at", UTCDateTime),
        Column("attempts", Integer, nullable=False, default=0),
    )
    Index("ix_outbox_unpublished", outbox.c.published_at, outbox.c.position)
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("processed_at", UTCDateTime, nullable=False),
    )
    dead_letter = Table(
        "dead_letter",
        metadata,
        Column("id", Position, primary_key=True, autoincrement=True),
        Column("consumer", String(100), nullable=False),
        Column("event_id", String(36), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("stream_sequence", BigInteger),
        Column("deliveries", Integer, nullable=False),
        Column("error_type", String(200), nullable=False, comment="exception class only: no personal data"),
        Column("error_code", String(100), nullable=False),
        Column("envelope", Text, nullable=False, comment="event envelopes carry no raw personal data"),
        Column("created_at", UTCDateTime, nullable=False),
        Column("replayed_at", UTCDateTime),
    )
    return EventTables(outbox=outbox, inbox=inbox, dead_letter=dead_letter)
