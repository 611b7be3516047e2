"""cases: the episode of the escalation ladder a case follows

notify's escalation events carry their ladder's episode (the sequence of the case event that started or
lifted it); casework keeps the one of the ladder its case follows and ignores a ladder event of a lower
episode (the end of an earlier episode, arriving late or replayed from dead letters). Cases escalated
before this revision know none: the next ladder event carrying one records it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalation_episode", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("escalation_episode")
