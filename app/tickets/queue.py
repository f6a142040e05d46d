"""Reading tickets: a team's queue with filters and cursor pages, and one ticket in full."""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from app.accounts.models import Account
from app.errors import InvalidInput, NotFound
from app.fields import MAX_BIGINT, Priority
from app.routing.models import RoutingDecision
from app.teams.models import Team
from app.tickets.models import Ticket, TicketEvent, TicketState

OPEN_STATES = (TicketState.OPEN, TicketState.ASSIGNED, TicketState.WAITING)


@dataclass(frozen=True)
class QueueFilter:
    """What a queue page shows; no states means every unresolved one."""

    states: tuple[TicketState, ...] = ()
    priorities: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    assignee: str | None = None
    breached: bool | None = None

    def apply(self, query: Select[tuple[Ticket]]) -> Select[tuple[Ticket]]:
        query = query.where(Ticket.state.in_(self.states or OPEN_STATES))
        if self.priorities:
            query = query.where(Ticket.priority.in_(self.priorities))
        if self.labels:
            query = query.where(Ticket.label.in_(self.labels))
        if self.assignee is not None:
            query = query.where(Ticket.assignee == self.assignee)
        if self.breached is not None:
            query = query.where(Ticket.breached.is_(self.breached))
        return query


@dataclass(frozen=True)
class Cursor:
    """A position in a queue: the last ticket of a page, by the queue's order."""

    priority: str
    due_at: datetime
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.priority, self.due_at.isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        """The position a token names; anything this API did not give out is a 422."""
        try:
            priority, due_at, ticket_id = json.loads(
                base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            )
            moment = datetime.fromisoformat(due_at)
            moment = moment.astimezone(UTC) if moment.tzinfo is not None else moment
        except (binascii.Error, ValueError, TypeError, OverflowError) as error:
            raise _bad_cursor() from error
        valid = (
            priority in get_args(Priority)
            and moment.tzinfo is not None
            and type(ticket_id) is int
            and 1 <= ticket_id <= MAX_BIGINT
        )
        if not valid:
            raise _bad_cursor()
        return cls(priority, moment, ticket_id)

    @classmethod
    def after(cls, ticket: Ticket) -> "Cursor":
        return cls(ticket.priority, ticket.due_at, ticket.id)


def _bad_cursor() -> InvalidInput:
    return InvalidInput("the cursor is not one this API gave out")


def queue(
    *, session: Session, team: Team, only: QueueFilter, limit: int, cursor: Cursor | None
) -> tuple[list[Ticket], Cursor | None]:
    """A team's tickets, most urgent priority first, then the nearest deadline first."""
    query = only.apply(select(Ticket).where(Ticket.team_id == team.id))
    if cursor is not None:
        query = query.where(_after(cursor))
    query = query.order_by(Ticket.priority, Ticket.due_at, Ticket.id).limit(limit + 1)
    rows = list(session.scalars(query).all())
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], Cursor.after(rows[limit - 1])


def _after(cursor: Cursor) -> ColumnElement[bool]:
    return or_(
        Ticket.priority > cursor.priority,
        and_(Ticket.priority == cursor.priority, Ticket.due_at > cursor.due_at),
        and_(
            Ticket.priority == cursor.priority,
            Ticket.due_at == cursor.due_at,
            Ticket.id > cursor.id,
        ),
    )


def get_ticket(
    *, session: Session, ticket_id: int, teams: frozenset[str] | None, lock: bool = False
) -> Ticket:
    """A ticket of one of these teams (None: any team); another team's ticket is not found.

    With `lock`, the row is locked until commit (PostgreSQL) and the team check is part of the
    locking read: a ticket moved to another team meanwhile is not found, never changed.
    """
    query = select(Ticket).join(Team, Team.id == Ticket.team_id).where(Ticket.id == ticket_id)
    if teams is not None:
        query = query.where(Team.slug.in_(teams))
    if lock:
        query = query.with_for_update(of=Ticket)
    ticket = session.scalars(query.execution_options(populate_existing=True)).first()
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}", details={"ticket_id": ticket_id})
    return ticket


def team_of(*, session: Session, ticket_id: int) -> str | None:
    """The slug of the team that holds the ticket now."""
    query = select(Team.slug).join(Ticket, Ticket.team_id == Team.id).where(Ticket.id == ticket_id)
    return session.scalars(query).first()


def mention_counts(*, session: Session, ticket_ids: Sequence[int]) -> dict[int, int]:
    query = (
        select(RoutingDecision.ticket_id, func.count())
        .where(RoutingDecision.ticket_id.in_(ticket_ids))
        .group_by(RoutingDecision.ticket_id)
    )
    return {
        ticket_id: count
        for ticket_id, count in session.execute(query).tuples()
        if ticket_id is not None
    }


def thread_mention_ids(*, session: Session, ticket_id: int) -> list[int]:
    """The mentions the ticket holds, in the order they were routed to it."""
    query = (
        select(RoutingDecision.mention_id)
        .where(RoutingDecision.ticket_id == ticket_id)
        .order_by(RoutingDecision.id)
    )
    return list(session.scalars(query).all())


def account_handles(*, session: Session, account_ids: Sequence[int]) -> dict[int, str]:
    rows = session.execute(
        select(Account.id, Account.handle).where(Account.id.in_(set(account_ids)))
    ).tuples()
    return dict(rows.all())


def team_slugs(*, session: Session, team_ids: Sequence[int]) -> dict[int, str]:
    rows = session.execute(select(Team.id, Team.slug).where(Team.id.in_(set(team_ids)))).tuples()
    return dict(rows.all())


def events_of(*, session: Session, ticket_id: int) -> Sequence[TicketEvent]:
    """The ticket's audit trail, oldest first."""
    query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
    return session.scalars(query).all()
