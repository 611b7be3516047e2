"""drop the child_id indexes that the assertions' unique indexes already cover

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 09:15:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # uq_child_attributes_assertion (child_id, attribute, department, value) and uq_child_flags_assertion
    # (child_id, category, department) begin with child_id: they answer every lookup by child_id, and the
    # separate index only cost one more index entry per provenance row and per flag.
    op.drop_index('ix_child_attributes_child_id', table_name='child_attributes')
    op.drop_index('ix_child_flags_child_id', table_name='child_flags')


def downgrade() -> None:
    op.create_index('ix_child_flags_child_id', 'child_flags', ['child_id'], unique=False)
    op.create_index('ix_child_attributes_child_id', 'child_attributes', ['child_id'], unique=False)
