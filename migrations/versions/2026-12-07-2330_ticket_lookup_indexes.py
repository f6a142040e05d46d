"""Tickets: indexes for the look-ups that scanned the whole table.

Each group of new posts asks which of its threads have a ticket (open, or resolved recently
enough to reopen), and the worker sweeps expired claims. Neither had an index to use: with
17,000 tickets the first took 1.2 ms a group on SQLite, 0.04 ms with the index, and it grew
with every ticket opened.

Revision ID: 9e4b2a6c8d13
Revises: 7c3d1f0e5a21
Create Date: 2026-12-07 23:30:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9e4b2a6c8d13"
down_revision: str | None = "7c3d1f0e5a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_tickets_conversation_key_resolved_at", ["conversation_key", "resolved_at"]
        )
        batch_op.create_index("ix_tickets_lease_expires_at", ["lease_expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_lease_expires_at")
        batch_op.drop_index("ix_tickets_conversation_key_resolved_at")
