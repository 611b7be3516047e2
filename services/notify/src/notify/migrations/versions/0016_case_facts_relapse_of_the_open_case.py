"""case facts: the latest relapse of a returned child before closure (casework's CaseRelapsed,
returned -> persuading) and its case event sequence, so that a return recorded before it no longer
counts on the scorecard

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_facts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "relapsed_on",
                sa.Date(),
                nullable=True,
                comment="the latest relapse of a returned child before closure (returned -> persuading)",
            )
        )
        batch_op.add_column(
            sa.Column(
                "relapsed_sequence",
                sa.Integer(),
                nullable=True,
                comment="the case event sequence of the relapse in relapsed_on",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("case_facts", schema=None) as batch_op:
        batch_op.drop_column("relapsed_sequence")
        batch_op.drop_column("relapsed_on")
