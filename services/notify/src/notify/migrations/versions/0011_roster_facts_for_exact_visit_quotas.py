"""roster facts: each school's students and special-group students of a semester (casework's RosterSet),
so the visit-quota deadline is judged on the exact shortfall

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "roster_facts",
        sa.Column("school_code", sa.String(length=20), nullable=False),
        sa.Column("semester", sa.String(length=20), nullable=False),
        sa.Column("students", sa.Integer(), nullable=False),
        sa.Column("special_group_students", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("school_code", "semester", name=op.f("pk_roster_facts")),
    )


def downgrade() -> None:
    op.drop_table("roster_facts")
