"""review item kinds as long as the reason codes that open them (varchar 20 -> 40)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every row reason code of severity "review" opens an item of that code as its kind; three of them
    # (id_birth_date_mismatch, id_address_code_unknown, id_address_code_not_in_use) are longer than 20.
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.alter_column(
            'kind',
            existing_type=sa.VARCHAR(length=20),
            type_=sqlmodel.sql.sqltypes.AutoString(length=40),
            existing_nullable=False,
        )


def downgrade() -> None:
    # Items of the longer kinds cannot be kept in 20 characters: they are removed (they were opened by
    # rows of feeds, which stay; the children's needs_review is left as it is).
    op.execute('DELETE FROM review_items WHERE LENGTH(kind) > 20')
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.alter_column(
            'kind',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=40),
            type_=sa.VARCHAR(length=20),
            existing_nullable=False,
        )
