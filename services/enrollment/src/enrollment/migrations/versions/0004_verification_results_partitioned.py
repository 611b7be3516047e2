"""verification_results partitioned by campaign (PostgreSQL)

On PostgreSQL ``verification_results`` becomes ``PARTITION BY LIST (campaign_id)``: a verification run
writes its results as a fresh table (``CREATE TABLE … AS``, bulk and parallel), builds its indexes in one
sort and swaps it in for the campaign's previous partition (``enrollment.verification.classify``).
Existing results move into one partition per campaign. SQLite keeps the plain table (nothing to do).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 06:40:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # noqa: F401
from alembic import op

import baoxue.db  # noqa: F401

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = """
    campaign_id VARCHAR(36) NOT NULL,
    child_id VARCHAR(36) NOT NULL,
    outcome VARCHAR(30) NOT NULL,
    rule VARCHAR(40) NOT NULL,
    evidence VARCHAR(80),
    hukou_town VARCHAR(12),
    hukou_school_district VARCHAR(14),
    run INTEGER NOT NULL,
    CONSTRAINT pk_verification_results PRIMARY KEY (campaign_id, child_id)
"""
INDEX = (
    "CREATE INDEX ix_verification_results_unaccounted ON verification_results (campaign_id, child_id) "
    "WHERE outcome = 'unaccounted'"
)


def _rename_old() -> None:
    op.execute("ALTER TABLE verification_results RENAME TO verification_results_old")
    op.execute(
        "ALTER TABLE verification_results_old RENAME CONSTRAINT pk_verification_results "
        "TO pk_verification_results_old"
    )
    op.execute(
        "ALTER INDEX ix_verification_results_unaccounted RENAME TO ix_verification_results_unaccounted_old"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _rename_old()
    op.execute(f"CREATE TABLE verification_results ({COLUMNS}) PARTITION BY LIST (campaign_id)")
    op.execute(INDEX)
    # one partition per campaign with results, named as a run names it (the runs so far as its number)
    campaigns = bind.execute(
        sa.text(
            "SELECT r.campaign_id, coalesce(max(c.runs), 0) FROM verification_results_old r "
            "LEFT JOIN campaigns c ON c.id = r.campaign_id GROUP BY r.campaign_id"
        )
    ).all()
    for number, (campaign_id, runs) in enumerate(campaigns):
        try:
            suffix = uuid.UUID(campaign_id).hex
        except ValueError:
            suffix = f"legacy{number}"
        quoted = campaign_id.replace("'", "''")
        op.execute(
            f"CREATE TABLE verification_results_{suffix}_{runs} PARTITION OF verification_results "
            f"FOR VALUES IN ('{quoted}')"
        )
    op.execute("INSERT INTO verification_results SELECT * FROM verification_results_old")
    op.execute("DROP TABLE verification_results_old")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _rename_old()
    op.execute(f"CREATE TABLE verification_results ({COLUMNS})")
    op.execute(INDEX)
    op.execute("INSERT INTO verification_results SELECT * FROM verification_results_old")
    op.execute("DROP TABLE verification_results_old")  # drops its partitions too
