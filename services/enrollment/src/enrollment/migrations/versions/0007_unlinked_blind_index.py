"""student records not yet linked to a child, indexed by blind index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("student_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_student_records_unlinked_blind_index",
            ["id_blind_index"],
            unique=False,
            sqlite_where=sa.text("child_id IS NULL"),
            postgresql_where=sa.text("child_id IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("student_records", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_student_records_unlinked_blind_index",
            sqlite_where=sa.text("child_id IS NULL"),
            postgresql_where=sa.text("child_id IS NULL"),
        )
