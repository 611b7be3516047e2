"""delivery leases: webhook_deliveries.lease_owner and leased_until — a worker claims due deliveries in a
short transaction, sends outside any transaction and records each outcome; SMS go on the same queue
(channel 'sms', the delivery's id is the SMS message's)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 07:03:24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import baoxue.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("leased_until", baoxue.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # The code before this revision sends no SMS from the queue: its SMS deliveries leave the log, and
    # messages still queued count as failed.
    op.execute(
        "DELETE FROM webhook_attempts WHERE delivery_id IN "
        "(SELECT id FROM webhook_deliveries WHERE channel = 'sms')"
    )
    op.execute("DELETE FROM webhook_deliveries WHERE channel = 'sms'")
    op.execute("UPDATE sms_messages SET status = 'failed' WHERE status = 'pending'")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_column("leased_until")
        batch_op.drop_column("lease_owner")
