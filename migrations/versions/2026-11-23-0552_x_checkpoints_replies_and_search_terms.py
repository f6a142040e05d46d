"""X: watched accounts' search terms and poll interval, pollers' checkpoints, queued replies.

Revision ID: 298992a8ee7d
Revises: 1ecdad2b4c44
Create Date: 2026-11-23 05:52:38.496550+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "298992a8ee7d"
down_revision: str | None = "1ecdad2b4c44"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "x_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("mentions", "search", name="channel", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("since_id", sa.String(length=32), nullable=True),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pagination_token", sa.String(length=200), nullable=True),
        sa.Column("sweep_newest_id", sa.String(length=32), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posts_seen", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_x_checkpoints_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_x_checkpoints")),
        sa.UniqueConstraint(
            "account_id", "channel", name=op.f("uq_x_checkpoints_account_id_channel")
        ),
    )
    with op.batch_alter_table("x_checkpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_x_checkpoints_next_poll_at"), ["next_poll_at"], unique=False
        )

    op.create_table(
        "x_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("mention_id", sa.Integer(), nullable=False),
        sa.Column("in_reply_to_id", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "sending",
                "sent",
                "failed",
                name="replystate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("x_post_id", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("via", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mention_id"], ["mentions.id"], name=op.f("fk_x_replies_mention_id_mentions")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_x_replies_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_x_replies")),
    )
    with op.batch_alter_table("x_replies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_x_replies_state_next_attempt_at"),
            ["state", "next_attempt_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_x_replies_ticket_id"), ["ticket_id"], unique=False)

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_terms", _json(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("poll_interval_seconds", sa.Integer(), nullable=True))
    # Existing accounts get no search terms; then the default goes: the application writes it.
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.alter_column("search_terms", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("poll_interval_seconds")
        batch_op.drop_column("search_terms")

    with op.batch_alter_table("x_replies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_x_replies_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_x_replies_state_next_attempt_at"))

    op.drop_table("x_replies")
    with op.batch_alter_table("x_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_x_checkpoints_next_poll_at"))

    op.drop_table("x_checkpoints")


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
