"""escalations: the sequence of the case event a ladder serves (its episode), so that a return, placement,
closure or withdrawal of an earlier episode, arriving late, leaves the current episode's ladder alone

Ladders started before this revision keep no sequence (notify cannot tell which case event started
them): a stop resolves them as before, and the first case event that would start or lift a ladder,
applied to such a ladder while it is active, records its sequence.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "episode_sequence",
                sa.Integer(),
                nullable=True,
                comment="the sequence of the case event the ladder serves: the one that started it, or a "
                "later request that lifted it",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_column("episode_sequence")
