"""Working tickets: claim, assign, wait, resolve, reopen, note, re-route; and the SLA timer.

Every change writes an event row (the audit trail) and an outbox event in the same transaction.
Tickets are read with a row lock on PostgreSQL so that two agents' changes apply one after the
other; SQLite runs one writing transaction at a time, which gives the same guarantee.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.errors import IllegalTransition, InvalidInput
from app.fields import PRIORITIES
from app.teams import service as teams
from app.teams.models import Team
from app.tickets import sla
from app.tickets.models import DeadlineKind, Ticket, TicketState
from app.tickets.service import publish, record_event

SLA_ACTOR = "system:sla"
OPEN, ASSIGNED, WAITING, RESOLVED = (
    TicketState.OPEN,
    TicketState.ASSIGNED,
    TicketState.WAITING,
    TicketState.RESOLVED,
)


def locked(*, session: Session, ticket: Ticket) -> Ticket:
    """The ticket re-read under a row lock (PostgreSQL), with what other writers committed."""
    query = select(Ticket).where(Ticket.id == ticket.id).with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one()


def _require(ticket: Ticket, action: str, allowed: tuple[TicketState, ...]) -> None:
    if ticket.state not in allowed:
        raise IllegalTransition(
            f"cannot {action} a ticket that is {ticket.state.value}",
            details={
                "state": ticket.state.value,
                "action": action,
                "allowed_from": [s.value for s in allowed],
            },
        )


def _check_member(team: Team, agent: str) -> None:
    if team.members and agent not in team.members:
        raise InvalidInput(
            f"{agent!r} is not a member of team {team.slug!r}",
            details={"agent": agent, "team": team.slug},
        )


def _changed(
    session: Session,
    ticket: Ticket,
    team: Team,
    *,
    kind: str,
    actor: str,
    before: TicketState,
    note: str | None = None,
    data: Mapping[str, Any] | None = None,
    now: datetime,
) -> Ticket:
    ticket.updated_at = now
    record_event(
        session=session,
        ticket=ticket,
        kind=kind,
        actor=actor,
        from_state=before if before != ticket.state else None,
        to_state=ticket.state if before != ticket.state else None,
        note=note,
        data=dict(data) if data else None,
        at=now,
    )
    event_type = "ticket.resolved" if ticket.state is RESOLVED and before is not RESOLVED else None
    publish(session=session, ticket=ticket, team=team, type=event_type or "ticket.updated")
    return ticket


def assign(*, session: Session, ticket: Ticket, assignee: str, actor: str, now: datetime) -> Ticket:
    """Give the ticket to an agent, for good (no lease)."""
    ticket = locked(session=session, ticket=ticket)
    _require(ticket, "assign", (OPEN, ASSIGNED))
    team = session.get_one(Team, ticket.team_id)
    _check_member(team, assignee)
    before, previous = ticket.state, ticket.assignee
    ticket.state, ticket.assignee, ticket.lease_expires_at = ASSIGNED, assignee, None
    data = {"assignee": assignee, "previous_assignee": previous}
    return _changed(
        session, ticket, team, kind="assigned", actor=actor, before=before, data=data, now=now
    )


def unassign(*, session: Session, ticket: Ticket, actor: str, now: datetime) -> Ticket:
    """Put the ticket back in the queue."""
    ticket = locked(session=session, ticket=ticket)
    _require(ticket, "unassign", (ASSIGNED,))
    team = session.get_one(Team, ticket.team_id)
    data = {"previous_assignee": ticket.assignee}
    ticket.state, ticket.assignee, ticket.lease_expires_at = OPEN, None, None
    return _changed(
        session, ticket, team, kind="unassigned", actor=actor, before=ASSIGNED, data=data, now=now
    )


def wait(
    *, session: Session, ticket: Ticket, actor: str, note: str | None, now: datetime
) -> Ticket:
    """The customer was answered and the ticket waits on them: the first response is met."""
    ticket = locked(session=session, ticket=ticket)
    _require(ticket, "set waiting", (OPEN, ASSIGNED))
    team = session.get_one(Team, ticket.team_id)
    before = ticket.state
    ticket.state, ticket.lease_expires_at = WAITING, None
    sla.meet(session=session, ticket=ticket, kinds=(DeadlineKind.FIRST_RESPONSE,), at=now)
    return _changed(
        session, ticket, team, kind="waiting", actor=actor, before=before, note=note, now=now
    )


def resolve(
    *, session: Session, ticket: Ticket, actor: str, note: str | None, now: datetime
) -> Ticket:
    """Close the ticket: both deadlines are met (a resolution answers the customer too)."""
    ticket = locked(session=session, ticket=ticket)
    _require(ticket, "resolve", (OPEN, ASSIGNED, WAITING))
    team = session.get_one(Team, ticket.team_id)
    before = ticket.state
    ticket.state, ticket.lease_expires_at, ticket.resolved_at = RESOLVED, None, now
    kinds = (DeadlineKind.FIRST_RESPONSE, DeadlineKind.RESOLUTION)
    sla.meet(session=session, ticket=ticket, kinds=kinds, at=now)
    return _changed(
        session, ticket, team, kind="resolved", actor=actor, before=before, note=note, now=now
    )


def reopen(
    *, session: Session, ticket: Ticket, actor: str, note: str | None, now: datetime
) -> Ticket:
    """Back to the queue, unassigned, with fresh deadlines."""
    ticket = locked(session=session, ticket=ticket)
    _require(ticket, "reopen", (RESOLVED,))
    team = session.get_one(Team, ticket.team_id)
    ticket.state, ticket.assignee = OPEN, None
    sla.restart(session=session, ticket=ticket, team=team, at=now)
    return _changed(
        session, ticket, team, kind="reopened", actor=actor, before=RESOLVED, note=note, now=now
    )


def add_note(*, session: Session, ticket: Ticket, actor: str, note: str, now: datetime) -> Ticket:
    """A note for colleagues; any state, no transition."""
    ticket = locked(session=session, ticket=ticket)
    team = session.get_one(Team, ticket.team_id)
    return _changed(
        session, ticket, team, kind="note", actor=actor, before=ticket.state, note=note, now=now
    )


def claim(
    *, session: Session, team: Team, agent: str, lease: timedelta, now: datetime
) -> Ticket | None:
    """The team's most urgent claimable ticket, assigned to the agent until the lease ends.

    Claimable: open, or assigned on a lease that has expired. `SKIP LOCKED` makes concurrent
    claimers on PostgreSQL pass over each other's rows instead of queueing behind them.
    """
    _check_member(team, agent)
    expired = and_(Ticket.state == ASSIGNED, Ticket.lease_expires_at <= now)
    query = (
        select(Ticket)
        .where(Ticket.team_id == team.id, or_(Ticket.state == OPEN, expired))
        .order_by(Ticket.priority, Ticket.due_at, Ticket.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    ticket = session.scalars(query).first()
    if ticket is None:
        return None
    before, previous = ticket.state, ticket.assignee
    ticket.state, ticket.assignee = ASSIGNED, agent
    ticket.lease_expires_at = now + lease
    data = {
        "assignee": agent,
        "previous_assignee": previous,
        "lease_expires_at": ticket.lease_expires_at.isoformat(),
    }
    return _changed(
        session, ticket, team, kind="claimed", actor=agent, before=before, data=data, now=now
    )


def reroute(
    *,
    session: Session,
    ticket: Ticket,
    to: Team,
    reason: str,
    priority: str | None,
    actor: str,
    now: datetime,
) -> Ticket:
    """Move the ticket to another team's queue, unassigned, its deadlines by that team's policy."""
    ticket = locked(session=session, ticket=ticket)
    _require(ticket, "re-route", (OPEN, ASSIGNED, WAITING))
    source = session.get_one(Team, ticket.team_id)
    if to.id == source.id and priority in (None, ticket.priority):
        raise IllegalTransition(f"the ticket is already in {to.slug!r}", details={"team": to.slug})
    before = ticket.state
    data = {"from_team": source.slug, "to_team": to.slug, "previous_assignee": ticket.assignee}
    if priority is not None and priority != ticket.priority:
        data["priority"] = f"{ticket.priority} -> {priority}"
        ticket.priority = priority
    ticket.team_id = to.id
    ticket.assignee, ticket.lease_expires_at = None, None
    ticket.state = OPEN if ticket.state is ASSIGNED else ticket.state
    sla.schedule(session=session, ticket=ticket, team=to)
    if to.id != source.id:
        publish(session=session, ticket=ticket, team=source, type="ticket.updated")
    return _changed(
        session,
        ticket,
        to,
        kind="rerouted",
        actor=actor,
        before=before,
        note=reason,
        data=data,
        now=now,
    )


@dataclass(frozen=True)
class Sweep:
    """What one pass of the timer did."""

    warnings: int = 0
    breaches: int = 0
    leases_released: int = 0


def sweep(*, session: Session, now: datetime, limit: int = 500) -> Sweep:
    """Raise due SLA warnings and breaches (escalating breached tickets), free expired leases."""
    warnings = breaches = 0
    for alarm in sla.due_alarms(session=session, now=now, limit=limit):
        team = session.get_one(Team, alarm.ticket.team_id)
        if alarm.breach:
            _breach(session, alarm, team, now)
            breaches += 1
        else:
            alarm.deadline.warned_at = now
            data = {"deadline": alarm.deadline.kind, "due_at": alarm.deadline.due_at.isoformat()}
            record_event(
                session=session,
                ticket=alarm.ticket,
                kind="sla_warning",
                actor=SLA_ACTOR,
                data=data,
                at=now,
            )
            warnings += 1
    released = _release_expired_leases(session=session, now=now, limit=limit)
    return Sweep(warnings=warnings, breaches=breaches, leases_released=released)


def _breach(session: Session, alarm: sla.Alarm, team: Team, now: datetime) -> None:
    ticket, deadline = alarm.ticket, alarm.deadline
    deadline.breached_at = now
    deadline.warned_at = deadline.warned_at or now
    ticket.breached = True
    data = {"deadline": deadline.kind, "due_at": deadline.due_at.isoformat()}
    record_event(
        session=session, ticket=ticket, kind="sla_breached", actor=SLA_ACTOR, data=data, at=now
    )
    _escalate(session, ticket, team, now)


def _escalate(session: Session, ticket: Ticket, team: Team, now: datetime) -> None:
    """What the team's policy says a breach does: a higher priority, another team, or both."""
    escalation = teams.policy_of(team).escalation
    data: dict[str, object] = {}
    if escalation.raise_priority and ticket.priority != PRIORITIES[0]:
        higher = PRIORITIES[PRIORITIES.index(ticket.priority) - 1]
        data["priority"] = f"{ticket.priority} -> {higher}"
        ticket.priority = higher
    target = team
    if escalation.team is not None and escalation.team != team.slug:
        target = teams.get(session=session, slug=escalation.team)
        data["from_team"], data["to_team"] = team.slug, target.slug
        ticket.team_id, ticket.assignee, ticket.lease_expires_at = target.id, None, None
        ticket.state = OPEN if ticket.state is ASSIGNED else ticket.state
        publish(session=session, ticket=ticket, team=team, type="ticket.updated")
    if data:
        before = ticket.state
        _changed(
            session,
            ticket,
            target,
            kind="escalated",
            actor=SLA_ACTOR,
            before=before,
            data=data,
            now=now,
        )
    else:
        publish(session=session, ticket=ticket, team=team, type="ticket.updated")


def _release_expired_leases(*, session: Session, now: datetime, limit: int) -> int:
    query = (
        select(Ticket)
        .where(Ticket.state == ASSIGNED, Ticket.lease_expires_at <= now)
        .order_by(Ticket.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    released = 0
    for ticket in session.scalars(query).all():
        team = session.get_one(Team, ticket.team_id)
        data = {"previous_assignee": ticket.assignee}
        ticket.state, ticket.assignee, ticket.lease_expires_at = OPEN, None, None
        _changed(
            session,
            ticket,
            team,
            kind="lease_expired",
            actor=SLA_ACTOR,
            before=ASSIGNED,
            data=data,
            now=now,
        )
        released += 1
    return released
