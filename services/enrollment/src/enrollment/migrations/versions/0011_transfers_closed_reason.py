"""student transfers: why and when an open transfer was cancelled (closed_reason, closed_on)

A transition that closes a record (dropout, graduation, death, transfer out) now cancels its open
transfer. Transfers left open on records closed before this revision are cancelled here the same way
(reason ``student_<status>``, on the day of the record's status), so they neither complete nor hang.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 23:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("student_transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_reason", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("closed_on", sa.Date(), nullable=True))
    op.execute(
        "UPDATE student_transfers SET state = 'cancelled', "
        "closed_reason = 'student_' || (SELECT r.status FROM student_records r "
        "WHERE r.id = student_transfers.student_id), "
        "closed_on = (SELECT r.status_since FROM student_records r WHERE r.id = student_transfers.student_id), "
        "version = version + 1 "
        "WHERE state IN ('requested', 'hanging') AND student_id IN "
        "(SELECT id FROM student_records WHERE status NOT IN ('enrolled', 'suspended'))"
    )


def downgrade() -> None:
    # Cancelled transfers stay 'cancelled': the earlier code treats any state but requested/hanging as closed.
    with op.batch_alter_table("student_transfers", schema=None) as batch_op:
        batch_op.drop_column("closed_on")
        batch_op.drop_column("closed_reason")
