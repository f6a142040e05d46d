"""Teams with members, hours and SLAs; ticket assignment, leases and deadlines; API keys.

Revision ID: b1989eebbcb3
Revises: ecec588748ab
Create Date: 2026-11-23 03:36:45.181275+00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b1989eebbcb3"
down_revision: str | None = "ecec588748ab"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _moment(name: str, *, nullable: bool = True, **options: object) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, **options)  # type: ignore[arg-type]


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scopes", _json(), nullable=False),
        _moment("created_at", nullable=False),
        _moment("revoked_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_api_keys_key_id")),
    )
    op.create_index(op.f("ix_api_keys_name"), "api_keys", ["name"], unique=False)
    op.create_table(
        "ticket_deadlines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _moment("warn_at", nullable=False),
        _moment("due_at", nullable=False),
        _moment("warned_at"),
        _moment("breached_at"),
        _moment("met_at"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_deadlines_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_deadlines")),
        sa.UniqueConstraint("ticket_id", "kind", name=op.f("uq_ticket_deadlines_ticket_id_kind")),
    )
    op.create_index(
        op.f("ix_ticket_deadlines_met_at_due_at"), "ticket_deadlines", ["met_at", "due_at"]
    )
    op.create_index(
        op.f("ix_ticket_deadlines_met_at_warn_at"), "ticket_deadlines", ["met_at", "warn_at"]
    )
    # Existing rows get defaults (no members, default SLA, due when opened), then the defaults go:
    # the application always writes these columns.
    with op.batch_alter_table("teams") as batch_op:
        batch_op.add_column(sa.Column("members", _json(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("hours", _json(), nullable=True))
        batch_op.add_column(sa.Column("sla", _json(), nullable=False, server_default="{}"))
        batch_op.add_column(
            _moment("updated_at", nullable=False, server_default=sa.func.current_timestamp())
        )
    with op.batch_alter_table("tickets") as batch_op:
        batch_op.add_column(sa.Column("tags", _json(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("assignee", sa.String(length=100), nullable=True))
        batch_op.add_column(_moment("lease_expires_at"))
        batch_op.add_column(_moment("due_at"))
        batch_op.add_column(
            sa.Column("breached", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(_moment("first_response_at"))
        batch_op.add_column(_moment("resolved_at"))
        batch_op.add_column(_moment("cycle_started_at"))
    op.execute("UPDATE tickets SET due_at = opened_at, cycle_started_at = opened_at")
    _deadlines_for_open_tickets()
    with op.batch_alter_table("teams") as batch_op:
        for column in ("members", "sla", "updated_at"):
            batch_op.alter_column(column, server_default=None)
    with op.batch_alter_table("tickets") as batch_op:
        batch_op.alter_column("tags", server_default=None)
        batch_op.alter_column("breached", server_default=None)
        for column in ("due_at", "cycle_started_at"):
            batch_op.alter_column(column, existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_index("ix_tickets_team_id_state_priority_opened_at")
        batch_op.create_index(op.f("ix_tickets_assignee"), ["assignee"])
        batch_op.create_index(
            op.f("ix_tickets_team_id_state_priority_due_at"),
            ["team_id", "state", "priority", "due_at"],
        )


# The default SLA targets of this revision (first response in minutes, resolution in hours), for
# the tickets that are open when it runs; written out so that the migration never changes.
DEFAULT_TARGETS = {"P1": (30, 4), "P2": (120, 24), "P3": (480, 72), "P4": (1_440, 168)}
WARN_AT = 0.8


def _deadlines_for_open_tickets() -> None:
    """Open tickets get deadlines by the default policy, counted from their opening."""
    bind = op.get_bind()
    tickets = sa.table(
        "tickets",
        sa.column("id", sa.Integer),
        sa.column("priority", sa.String),
        sa.column("state", sa.String),
        sa.column("opened_at", sa.DateTime(timezone=True)),
        sa.column("due_at", sa.DateTime(timezone=True)),
    )
    deadlines = sa.table(
        "ticket_deadlines",
        sa.column("ticket_id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("warn_at", sa.DateTime(timezone=True)),
        sa.column("due_at", sa.DateTime(timezone=True)),
    )
    rows = bind.execute(
        sa.select(tickets.c.id, tickets.c.priority, tickets.c.opened_at).where(
            tickets.c.state != "resolved"
        )
    ).all()
    for ticket_id, priority, opened_at in rows:
        opened = _aware(opened_at)
        first_minutes, resolution_hours = DEFAULT_TARGETS.get(priority, DEFAULT_TARGETS["P4"])
        allowed = {"first_response": first_minutes, "resolution": resolution_hours * 60}
        for kind, minutes in allowed.items():
            bind.execute(
                deadlines.insert().values(
                    ticket_id=ticket_id,
                    kind=kind,
                    warn_at=opened + timedelta(minutes=minutes * WARN_AT),
                    due_at=opened + timedelta(minutes=minutes),
                )
            )
        due = opened + timedelta(minutes=first_minutes)
        bind.execute(tickets.update().where(tickets.c.id == ticket_id).values(due_at=due))


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch_op:
        batch_op.drop_index(op.f("ix_tickets_team_id_state_priority_due_at"))
        batch_op.drop_index(op.f("ix_tickets_assignee"))
        batch_op.create_index(
            "ix_tickets_team_id_state_priority_opened_at",
            ["team_id", "state", "priority", "opened_at"],
        )
        for column in (
            "cycle_started_at",
            "resolved_at",
            "first_response_at",
            "breached",
            "due_at",
            "lease_expires_at",
            "assignee",
            "tags",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("teams") as batch_op:
        for column in ("updated_at", "sla", "hours", "members"):
            batch_op.drop_column(column)
    op.drop_table("ticket_deadlines")
    op.drop_index(op.f("ix_api_keys_name"), table_name="api_keys")
    op.drop_table("api_keys")
