"""feed batches say whether they complete the department's delivery for the period

``feed_batches.delivery_complete``: a department may deliver one period in several batches; a batch
declared one part of the delivery (false) lapses no category flag, the batch that completes it (true)
lapses those no batch of the period asserted (``registry.children.merge.lapse_flags``). Every batch
before this revision was taken as a whole delivery: the column is added as true for them (server
default), which is what it meant then.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 23:06:34.955171
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('feed_batches', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('delivery_complete', sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('feed_batches', schema=None) as batch_op:
        batch_op.drop_column('delivery_complete')
