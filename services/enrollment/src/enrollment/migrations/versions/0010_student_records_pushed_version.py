"""student records: the version the provincial platform last acknowledged (pushed_version)

The push no longer resumes after the last pushed record's (updated_at, id): a change committed after a
later one was pushed was never sent. Every record starts at pushed_version 0, so after this upgrade
every local record is pushed once more (the platform receives its current status again), which also
delivers any change the old checkpoint skipped.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 22:44:36
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "source = 'local' AND pushed_version <> version"


def upgrade() -> None:
    with op.batch_alter_table("student_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pushed_version", sa.Integer(), server_default="0", nullable=False))
        batch_op.create_index(
            "ix_student_records_push_pending",
            ["id"],
            unique=False,
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )


def downgrade() -> None:
    with op.batch_alter_table("student_records", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_student_records_push_pending",
            sqlite_where=sa.text(PENDING),
            postgresql_where=sa.text(PENDING),
        )
        batch_op.drop_column("pushed_version")
