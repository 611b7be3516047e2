"""escalation episode ends: per case, the latest case event that stops a ladder (a return, placement,
closure or withdrawal), kept even when no ladder was there to stop, so that a confirmation, relapse or
request older than it (dead-lettered and replayed after the return arrived, or late) starts no ladder

Ends applied before this revision were not kept: a ladder they resolved still refuses its own event and
older ones (its episode_sequence), but an end that found no ladder is unknown here.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import baoxue.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escalation_episode_ends",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column(
            "sequence", sa.Integer(), nullable=False, comment="the case event sequence of the latest end"
        ),
        sa.Column("resolution", sa.String(length=12), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=False),
        sa.Column("updated_at", baoxue.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_escalation_episode_ends")),
    )


def downgrade() -> None:
    op.drop_table("escalation_episode_ends")
