"""case reports: one per episode of a case

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 13:27:21.122427
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # noqa: F401
from alembic import op


import baoxue.db  # noqa: F401

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A relapse reopens a case (closed -> suspected) and clears its report date; the reconfirmed case
    # files a report of its own. A report's episode is the case's reopen_count when it was filed: the
    # number of reopenings recorded before the report, so a report filed before a relapse keeps the
    # episode it belongs to.
    with op.batch_alter_table('case_reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('episode', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE case_reports SET episode = (SELECT COUNT(*) FROM case_transitions t"
        " WHERE t.case_id = case_reports.case_id AND t.from_state = 'closed' AND t.to_state = 'suspected'"
        " AND t.at < case_reports.created_at)"
    )
    with op.batch_alter_table('case_reports', schema=None) as batch_op:
        batch_op.alter_column('episode', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f('uq_case_reports_case_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_case_reports_case_id_episode'), ['case_id', 'episode'])


def downgrade() -> None:
    # The older schema holds one report per case: the latest episode's is kept, earlier ones are deleted.
    op.execute(
        "DELETE FROM case_reports WHERE episode < (SELECT MAX(r.episode) FROM case_reports r"
        " WHERE r.case_id = case_reports.case_id)"
    )
    with op.batch_alter_table('case_reports', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_case_reports_case_id_episode'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_case_reports_case_id'), ['case_id'])
        batch_op.drop_column('episode')
