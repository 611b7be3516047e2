"""merged records name the record at the end of their chain of merges (data only)

``children.merged_into`` names the record that remains: since merges flatten chains
(``registry.children.merging.merge_records`` and a feed's automatic links), merging B into C makes the
records merged into B name C. Records merged before that still name the record they were merged into,
which may have been merged in turn (A → B → C): a feed naming A's ID number followed such a chain one
step only (to the duplicate B), and C did not count A's flags and sources. This revision points every
merged record at the end of its chain. The merges themselves (``child_merges``, who was merged into
whom) are not touched: undoing a merge follows them, as it does for chains made since.

Upgrade: one ``UPDATE``, set-based. A recursive CTE walks every merged record along ``merged_into``
until a record that is not merged (``UNION``, not ``UNION ALL``: the pairs it has seen end the walk, so
even a cycle, which no merge can make, would end; records on one are left as they are, having no end),
and the records whose end differs from what they name are given it (PostgreSQL: ``UPDATE … FROM``;
SQLite: a correlated subquery, see ``_repoint``). 100,000 records of which 40,000 re-pointed: 3.7 s on
PostgreSQL, 2.5 s on SQLite, the events included.

Events: written, to the outbox. The change is what a merge made since announces for each record it
re-points (``merge_records``): ChildStatusChanged with ``status`` and ``previous_status`` both
``duplicate`` and the new ``merged_into``, at the record's next version, so the consumers' read models
(enrollment keeps ``merged_into``) name the same record as the registry. A migration cannot publish to
NATS, but the outbox is a table of this database: its rows are written in the migration's transaction,
with the library's envelope (``baoxue.events.envelope.EnvelopeBatch``: the text ``Outbox.add`` writes)
around the contract's data (``baoxue.contracts.registry.ChildStatusChanged``), and the service's relay
publishes them once it runs (``Nats-Msg-Id`` = event id, as every event). Only for records the consumers
have heard of (version above 0, as ``merging.announce_merged``), whose version goes up by one;
``effective_date`` is the day of the upgrade (the day from which the record names its survivor); no
trace id. Offline (``alembic upgrade --sql``) there are no rows to read, so no envelope can be built:
the generated SQL re-points the records and writes no events (and bumps no version).

Downgrade: nothing. The old pointers named a record that is itself merged, which nothing needs (the
merges keep who was merged into whom); restoring them would bring the one-step chains back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 19:10:00.000000
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 1000

# Each merged record and the record at the end of its chain (one that is not merged), where that differs
# from the record it names now.
_ENDS = """
WITH RECURSIVE walk(id, target) AS (
    SELECT id, merged_into FROM children WHERE merged_into IS NOT NULL
    UNION
    SELECT walk.id, step.merged_into FROM walk JOIN children AS step ON step.id = walk.target
    WHERE step.merged_into IS NOT NULL
),
ends(id, target) AS (
    SELECT walk.id, walk.target FROM walk JOIN children AS tail ON tail.id = walk.target
    WHERE tail.merged_into IS NULL
),
moves(id, target) AS (
    SELECT ends.id, ends.target FROM ends JOIN children AS here ON here.id = ends.id
    WHERE here.merged_into <> ends.target
)
"""


def _repoint(dialect: str, *, bump_version: bool) -> str:
    """The ``UPDATE``: on PostgreSQL a join with ``moves`` (``UPDATE … FROM``, hashed); on SQLite, which
    has ``UPDATE … FROM`` only from 3.33, a correlated subquery of ``moves`` (materialised once, indexed
    by SQLite). A correlated subquery on PostgreSQL scans ``moves`` once per record: 113 s for 40,000 of
    100,000 records re-pointed, against 2 s on SQLite."""
    version = ", version = CASE WHEN version > 0 THEN version + 1 ELSE version END" if bump_version else ""
    if dialect == "postgresql":
        return (
            _ENDS
            + "UPDATE children SET merged_into = moves.target"
            + version
            + " FROM moves WHERE children.id = moves.id"
        )
    return (
        _ENDS
        + "UPDATE children SET merged_into = (SELECT moves.target FROM moves WHERE moves.id = children.id)"
        + version
        + " WHERE id IN (SELECT moves.id FROM moves)"
    )


def upgrade() -> None:
    if op.get_context().as_sql:  # offline: no rows to read, so no envelopes (see above)
        op.execute(_repoint(op.get_context().dialect.name, bump_version=False))
        return
    bind = op.get_bind()
    announced = bind.execute(
        sa.text(
            _ENDS + "SELECT c.id, moves.target, c.version, c.hukou_town, c.hukou_school_district "
            "FROM moves JOIN children AS c ON c.id = moves.id WHERE c.version > 0 ORDER BY c.id"
        )
    ).all()
    bind.execute(sa.text(_repoint(bind.dialect.name, bump_version=True)))
    if announced:
        _write_events(bind, announced)


def _write_events(bind: sa.Connection, announced: Sequence[sa.Row]) -> None:
    from baoxue.contracts.registry import ChildStatusChanged
    from baoxue.db import UTCDateTime, utcnow
    from baoxue.events.envelope import EnvelopeBatch

    now = utcnow()
    today = dt.date.today()
    batch = EnvelopeBatch(trace_id=None, time=now)
    outbox = sa.table(
        'outbox',
        sa.column('event_id'),
        sa.column('subject'),
        sa.column('event_type'),
        sa.column('aggregate_id'),
        sa.column('envelope'),
        sa.column('trace_id'),
        sa.column('created_at', UTCDateTime()),
        sa.column('published_at', UTCDateTime()),
        sa.column('attempts'),
    )
    rows = []
    for child_id, survivor, version, town, school_district in announced:
        data = ChildStatusChanged(
            child_id=child_id,
            status='duplicate',
            previous_status='duplicate',
            effective_date=today,
            merged_into=survivor,
            hukou_town=town,
            hukou_school_district=school_district,
        )
        event_id, envelope = batch.dump(data, subject=child_id, sequence=version + 1)
        rows.append(
            {
                'event_id': event_id,
                'subject': data.relative_subject(),
                'event_type': data.event_type(),
                'aggregate_id': child_id,
                'envelope': envelope,
                'trace_id': None,
                'created_at': now,
                'published_at': None,
                'attempts': 0,
            }
        )
    for start in range(0, len(rows), _CHUNK):
        bind.execute(sa.insert(outbox), rows[start : start + _CHUNK])


def downgrade() -> None:
    # Nothing to undo: see the module's docstring (the old pointers are not needed).
    pass
