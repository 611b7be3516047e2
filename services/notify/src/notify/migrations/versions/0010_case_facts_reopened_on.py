"""case facts: the date a closed case was reopened by a new signal (relapse), for the dropout reports

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_facts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "reopened_on",
                sa.Date(),
                nullable=True,
                comment="the latest reopening by a new signal (relapse)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("case_facts", schema=None) as batch_op:
        batch_op.drop_column("reopened_on")
