"""deadlines: the sequence of the latest event of the subject applied (``deadlines.sequence``), so that a
verification task's events arriving out of order (a ChildUnaccounted dead-lettered and replayed after the
task was moved, superseded or resolved) are dropped as stale

Deadlines opened before this revision have none: no event of their subject is stale against them until
one is applied.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "sequence",
                sa.Integer(),
                nullable=True,
                comment="the sequence of the latest event of the subject applied (verification_task: the "
                "task's version); an event of the subject not after it is stale",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_column("sequence")
