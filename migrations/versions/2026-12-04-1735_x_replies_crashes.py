"""X replies: how many of a reply's attempts ended with its worker gone (no outcome recorded).

Revision ID: 5b1e2c7d9a40
Revises: 298992a8ee7d
Create Date: 2026-12-04 17:35:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1e2c7d9a40"
down_revision: str | None = "298992a8ee7d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("x_replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("crashes", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("x_replies", schema=None) as batch_op:
        batch_op.drop_column("crashes")
