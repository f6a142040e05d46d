"""SLA deadlines of tickets: schedule them, mark them met, and sweep for warnings and breaches."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.teams import service as teams
from app.teams.calendar import Calendar
from app.teams.models import Team
from app.teams.schemas import SlaPolicy
from app.tickets.models import DeadlineKind, Ticket, TicketDeadline, TicketState


def deadlines_of(*, session: Session, ticket: Ticket) -> dict[str, TicketDeadline]:
    rows = session.scalars(select(TicketDeadline).where(TicketDeadline.ticket_id == ticket.id))
    return {row.kind: row for row in rows}


@dataclass(frozen=True)
class Due:
    """When a deadline falls due, and when to warn that it is near."""

    due_at: datetime
    warn_at: datetime


def cycle_deadlines(
    *, policy: SlaPolicy, clock: Calendar, priority: str, start: datetime
) -> dict[DeadlineKind, Due]:
    """The deadlines of a cycle that starts at `start`, by the team's policy and clock."""
    target = policy.target(priority)
    allowed = {
        DeadlineKind.FIRST_RESPONSE: float(target.first_response_minutes),
        DeadlineKind.RESOLUTION: target.resolution_hours * 60,
    }
    return {
        kind: Due(
            due_at=clock.add_business_minutes(start, minutes),
            warn_at=clock.add_business_minutes(start, minutes * policy.warn_at),
        )
        for kind, minutes in allowed.items()
    }


def schedule(*, session: Session, ticket: Ticket, team: Team) -> None:
    """(Re)compute the unmet deadlines of the ticket's cycle from its team's policy."""
    computed = cycle_deadlines(
        policy=teams.policy_of(team),
        clock=teams.sla_clock(team),
        priority=ticket.priority,
        start=ticket.cycle_started_at,
    )
    existing = deadlines_of(session=session, ticket=ticket)
    for kind, due in computed.items():
        deadline = existing.get(kind) or TicketDeadline(ticket_id=ticket.id, kind=kind.value)
        if deadline.met_at is not None:
            continue
        deadline.due_at, deadline.warn_at = due.due_at, due.warn_at
        existing[kind] = deadline
        session.add(deadline)
    ticket.due_at = _next_due(existing, ticket.due_at)


def restart(*, session: Session, ticket: Ticket, team: Team, at: datetime) -> None:
    """A new cycle (the ticket was reopened): every deadline counts again from `at`."""
    ticket.cycle_started_at = at
    ticket.breached = False
    ticket.first_response_at = None
    ticket.resolved_at = None
    for deadline in deadlines_of(session=session, ticket=ticket).values():
        deadline.warned_at = deadline.breached_at = deadline.met_at = None
    schedule(session=session, ticket=ticket, team=team)


def meet(
    *, session: Session, ticket: Ticket, kinds: tuple[DeadlineKind, ...], at: datetime
) -> None:
    """Mark deadlines met (a first response, a resolution); met ones keep their first time."""
    existing = deadlines_of(session=session, ticket=ticket)
    for kind in kinds:
        deadline = existing.get(kind)
        if deadline is not None and deadline.met_at is None:
            deadline.met_at = at
    if DeadlineKind.FIRST_RESPONSE in kinds and ticket.first_response_at is None:
        ticket.first_response_at = at
    ticket.due_at = _next_due(existing, ticket.due_at)


def _pending(deadlines: dict[str, TicketDeadline]) -> list[TicketDeadline]:
    return [d for d in deadlines.values() if d.met_at is None]


def _next_due(deadlines: dict[str, TicketDeadline], current: datetime) -> datetime:
    pending = _pending(deadlines) or list(deadlines.values())
    return min((d.due_at for d in pending), default=current)


@dataclass(frozen=True)
class Alarm:
    """A deadline that just reached its warning time or its due time."""

    deadline: TicketDeadline
    ticket: Ticket
    breach: bool


def due_alarms(*, session: Session, now: datetime, limit: int) -> list[Alarm]:
    """Unmet deadlines of unresolved tickets now past their warning or due time, claimed so that
    two sweepers never raise the same alarm (row locks on PostgreSQL; SQLite writes one at a time).
    """
    warn = and_(
        TicketDeadline.warned_at.is_(None),
        TicketDeadline.breached_at.is_(None),
        TicketDeadline.warn_at <= now,
    )
    breach = and_(TicketDeadline.breached_at.is_(None), TicketDeadline.due_at <= now)
    query = (
        select(TicketDeadline, Ticket)
        .join(Ticket, Ticket.id == TicketDeadline.ticket_id)
        .where(TicketDeadline.met_at.is_(None), Ticket.state != TicketState.RESOLVED)
        .where(or_(warn, breach))
        .order_by(TicketDeadline.due_at, TicketDeadline.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=[TicketDeadline, Ticket])
    )
    return [
        Alarm(deadline=deadline, ticket=ticket, breach=deadline.due_at <= now)
        for deadline, ticket in session.execute(query).tuples()
    ]
