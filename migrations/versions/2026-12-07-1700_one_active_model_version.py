"""Model versions: at most one active, enforced by a partial unique index.

Two activations at once could leave two versions active before registrations and activations
took a lock; should a database hold two, the one activated last stays active.

Revision ID: 7c3d1f0e5a21
Revises: 5b1e2c7d9a40
Create Date: 2026-12-07 17:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c3d1f0e5a21"
down_revision: str | None = "5b1e2c7d9a40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

versions = sa.table(
    "model_versions",
    sa.column("id", sa.Integer),
    sa.column("active", sa.Boolean),
    sa.column("activated_at", sa.DateTime),
    sa.column("created_at", sa.DateTime),
)


def upgrade() -> None:
    last_activated = (
        sa.select(versions.c.id)
        .where(versions.c.active)
        .order_by(
            sa.func.coalesce(versions.c.activated_at, versions.c.created_at).desc(),
            versions.c.id.desc(),
        )
        .limit(1)
        .scalar_subquery()
    )
    op.execute(
        versions.update()
        .where(versions.c.active, versions.c.id != last_activated)
        .values(active=False)
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_model_versions_one_active",
            ["active"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_model_versions_one_active",
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )
