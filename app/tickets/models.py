"""Tickets in a team's queue, and the event rows that are their audit trail."""

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, partial_unique_index, text_enum, utcnow


class TicketState(enum.StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    WAITING = "waiting"
    RESOLVED = "resolved"


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        # One unresolved ticket per conversation: a follow-up joins the thread, never opens another.
        partial_unique_index(
            "uq_tickets_open_conversation", "conversation_key", where="state != 'resolved'"
        ),
        Index(None, "team_id", "state", "priority", "due_at"),
        # A thread's tickets, open or resolved since a moment: every group of new posts asks
        # which of its threads have one (without it, a scan of every ticket ever opened).
        Index(None, "conversation_key", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    conversation_key: Mapped[str] = mapped_column(String(240))
    state: Mapped[TicketState] = mapped_column(text_enum(TicketState), default=TicketState.OPEN)
    priority: Mapped[str] = mapped_column(String(2))
    label: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    first_mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id"))
    tags: Mapped[list[str]] = mapped_column(default=list)
    assignee: Mapped[str | None] = mapped_column(String(100), index=True)
    # Set by a claim: past this moment the ticket may be claimed by someone else.
    lease_expires_at: Mapped[datetime | None] = mapped_column(index=True)  # the expiry sweep
    # The next deadline not yet met (first response, then resolution): the queue's order.
    due_at: Mapped[datetime]
    breached: Mapped[bool] = mapped_column(default=False)
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the current cycle began: the opening, or the last reopening. Deadlines count from it.
    cycle_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeadlineKind(enum.StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class TicketDeadline(Base):
    """One SLA deadline of a ticket's current cycle (a reopened ticket starts a new one)."""

    __tablename__ = "ticket_deadlines"
    __table_args__ = (
        UniqueConstraint("ticket_id", "kind"),
        Index(None, "met_at", "due_at"),
        Index(None, "met_at", "warn_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    warn_at: Mapped[datetime]
    due_at: Mapped[datetime]
    warned_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    met_at: Mapped[datetime | None]


class TicketEvent(Base):
    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(100))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    mention_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id"))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None]
    at: Mapped[datetime] = mapped_column(default=utcnow)
