"""absence reports keyed by school and batch id

A school's absence report batch is received once per (school_code, batch_id): the batch id is the
school's own, and two schools may both send "2026-W41" (before, the second was answered as a replay of
the first and dropped). The batches received so far are filled in from their lines.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 13:30:42.496873
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # noqa: F401
from alembic import op


import baoxue.db  # noqa: F401

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('absence_reports',
    sa.Column('school_code', sa.String(length=14), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('reported_on', sa.Date(), nullable=False),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('school_code', 'batch_id', name=op.f('pk_absence_reports'))
    )
    op.execute(
        "INSERT INTO absence_reports (school_code, batch_id, reported_on, lines) "
        "SELECT school_code, batch_id, min(reported_on), count(*) FROM absence_report_lines "
        "GROUP BY school_code, batch_id"
    )


def downgrade() -> None:
    op.drop_table('absence_reports')
