"""case facts: the case event sequence of the return and of the reopening beside their dates, so that a
return is counted for the episode it belongs to (by the events' order, not their dates)

A fact reopened before this revision gets the fact's sequence as its reopening's: the highest sequence
notify had applied, so not below the reopening's own; a return applied after this revision with a
higher sequence is certainly later than that reopening. Returns applied before it keep no sequence and
are judged by the dates, as before.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_facts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "returned_sequence",
                sa.Integer(),
                nullable=True,
                comment="the case event sequence of the return in returned_on",
            )
        )
        batch_op.add_column(
            sa.Column(
                "reopened_sequence",
                sa.Integer(),
                nullable=True,
                comment="the case event sequence of the reopening in reopened_on",
            )
        )
    op.execute("UPDATE case_facts SET reopened_sequence = sequence WHERE reopened_on IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("case_facts", schema=None) as batch_op:
        batch_op.drop_column("reopened_sequence")
        batch_op.drop_column("returned_sequence")
