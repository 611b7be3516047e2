"""The library's tables, defined once into each service's metadata."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import MetaData, Table

from baoxue.audit import define_audit_table
from baoxue.events.tables import EventTables, define_event_tables
from baoxue.idempotency import define_idempotency_table
from baoxue.jobs import define_jobs_table


@dataclass(frozen=True)
class MechanismTables:
    events: EventTables
    audit: Table
    jobs: Table
    idempotency: Table


def define_mechanism_tables(metadata: MetaData) -> MechanismTables:
    """Add outbox, inbox, dead letters, audit log, jobs and idempotency keys to a service's metadata."""
    return MechanismTables(
        events=define_event_tables(metadata),
        audit=define_audit_table(metadata),
        jobs=define_jobs_table(metadata),
        idempotency=define_idempotency_table(metadata),
    )
