"""campaign results kept per version

A campaign's frozen result was one column (campaigns.frozen_result), overwritten by every freeze: the
earlier versions a bulletin was built from were lost. Each freeze now adds a row to campaign_results
(campaign_id, version); the latest frozen result moves there as its version. The downgrade puts each
campaign's latest version back into the column (the earlier ones have no place there).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 13:40:43.285855
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # noqa: F401
from alembic import op


import baoxue.db  # noqa: F401

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('campaign_results',
    sa.Column('campaign_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('result', sa.Text(), nullable=False),
    sa.Column('frozen_at', baoxue.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_results_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('campaign_id', 'version', name=op.f('pk_campaign_results'))
    )
    op.execute(
        "INSERT INTO campaign_results (campaign_id, version, result, frozen_at) "
        "SELECT id, result_version, frozen_result, coalesce(frozen_at, created_at) FROM campaigns "
        "WHERE frozen_result IS NOT NULL"
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('frozen_result')


def downgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('frozen_result', sa.TEXT(), nullable=True))
    op.execute(
        "UPDATE campaigns SET frozen_result = (SELECT r.result FROM campaign_results r "
        "WHERE r.campaign_id = campaigns.id AND r.version = campaigns.result_version)"
    )
    op.drop_table('campaign_results')
