"""Working tickets: claim, assign, wait, resolve, reopen, note, re-route; and the SLA timer.

Every change writes an event row (the audit trail) and an outbox event in the same transaction.
The functions that take a ticket expect it read under a row lock (`queue.get_ticket(lock=True)`),
so that two agents' changes apply one after the other on PostgreSQL; SQLite runs one writing
transaction at a time, which gives the same guarantee.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import IllegalTransition, InvalidInput
from app.fields import PRIORITIES
from app.teams import service as teams
from app.teams.models import Team
from app.tickets import sla
from app.tickets.models import DeadlineKind, Ticket, TicketState
from app.tickets.service import open_ticket, publish, record_event

SLA_ACTOR = "system:sla"
ACTIVE = (TicketState.OPEN, TicketState.ASSIGNED, TicketState.WAITING)


@dataclass(frozen=True)
class Act:
    """Who acts (an agent, or `key:<name>`), when, and through which key."""

    actor: str
    now: datetime
    via: str | None = None


def _require(ticket: Ticket, *, action: str, allowed: tuple[TicketState, ...]) -> None:
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
    *,
    session: Session,
    ticket: Ticket,
    team: Team,
    kind: str,
    act: Act,
    before: TicketState,
    note: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Ticket:
    ticket.updated_at = act.now
    details = {**(data or {}), **({"via": act.via} if act.via else {})}
    record_event(
        session=session,
        ticket=ticket,
        kind=kind,
        actor=act.actor,
        from_state=before if before != ticket.state else None,
        to_state=ticket.state if before != ticket.state else None,
        note=note,
        data=details or None,
        at=act.now,
    )
    resolved = ticket.state is TicketState.RESOLVED and before is not TicketState.RESOLVED
    publish(
        session=session,
        ticket=ticket,
        team=team,
        type="ticket.resolved" if resolved else "ticket.updated",
    )
    return ticket


def assign(*, session: Session, ticket: Ticket, assignee: str, act: Act) -> Ticket:
    """Give the ticket to an agent, for good (no lease)."""
    _require(ticket, action="assign", allowed=(TicketState.OPEN, TicketState.ASSIGNED))
    team = session.get_one(Team, ticket.team_id)
    _check_member(team, assignee)
    before, previous = ticket.state, ticket.assignee
    ticket.state, ticket.assignee, ticket.lease_expires_at = TicketState.ASSIGNED, assignee, None
    data = {"assignee": assignee, "previous_assignee": previous}
    return _changed(
        session=session,
        ticket=ticket,
        team=team,
        kind="assigned",
        act=act,
        before=before,
        data=data,
    )


def unassign(*, session: Session, ticket: Ticket, act: Act) -> Ticket:
    """Put the ticket back in the queue."""
    _require(ticket, action="unassign", allowed=(TicketState.ASSIGNED,))
    team = session.get_one(Team, ticket.team_id)
    data = {"previous_assignee": ticket.assignee}
    ticket.state, ticket.assignee, ticket.lease_expires_at = TicketState.OPEN, None, None
    return _changed(
        session=session,
        ticket=ticket,
        team=team,
        kind="unassigned",
        act=act,
        before=TicketState.ASSIGNED,
        data=data,
    )


def wait(*, session: Session, ticket: Ticket, note: str | None, act: Act) -> Ticket:
    """The customer was answered and the ticket waits on them: the first response is met.

    A claim's lease runs on: if it ends before the customer answers, the ticket goes back to
    the queue when they do, instead of staying with an agent who may have left.
    """
    _require(ticket, action="set waiting", allowed=(TicketState.OPEN, TicketState.ASSIGNED))
    team = session.get_one(Team, ticket.team_id)
    before = ticket.state
    ticket.state = TicketState.WAITING
    sla.meet(session=session, ticket=ticket, kinds=(DeadlineKind.FIRST_RESPONSE,), at=act.now)
    return _changed(
        session=session, ticket=ticket, team=team, kind="waiting", act=act, before=before, note=note
    )


def resolve(*, session: Session, ticket: Ticket, note: str | None, act: Act) -> Ticket:
    """Close the ticket: both deadlines are met (a resolution answers the customer too)."""
    _require(ticket, action="resolve", allowed=ACTIVE)
    team = session.get_one(Team, ticket.team_id)
    before = ticket.state
    ticket.state, ticket.lease_expires_at, ticket.resolved_at = (
        TicketState.RESOLVED,
        None,
        act.now,
    )
    kinds = (DeadlineKind.FIRST_RESPONSE, DeadlineKind.RESOLUTION)
    sla.meet(session=session, ticket=ticket, kinds=kinds, at=act.now)
    return _changed(
        session=session,
        ticket=ticket,
        team=team,
        kind="resolved",
        act=act,
        before=before,
        note=note,
    )


def reopen(*, session: Session, ticket: Ticket, note: str | None, act: Act) -> Ticket:
    """Back to the queue, unassigned, with fresh deadlines; not while the conversation has
    another open ticket (a later post opened one)."""
    _require(ticket, action="reopen", allowed=(TicketState.RESOLVED,))
    newer = open_ticket(session=session, conversation_key=ticket.conversation_key)
    if newer is not None:
        raise _conversation_busy(ticket, newer.id)
    team = session.get_one(Team, ticket.team_id)
    ticket.state, ticket.assignee = TicketState.OPEN, None
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:  # a post opened a ticket for the thread meanwhile
        raise _conversation_busy(ticket, None) from error
    sla.restart(session=session, ticket=ticket, team=team, at=act.now)
    return _changed(
        session=session,
        ticket=ticket,
        team=team,
        kind="reopened",
        act=act,
        before=TicketState.RESOLVED,
        note=note,
    )


def _conversation_busy(ticket: Ticket, other: int | None) -> IllegalTransition:
    return IllegalTransition(
        "the conversation has another open ticket: work that one",
        details={"state": ticket.state.value, "action": "reopen", "open_ticket": other},
    )


def add_note(*, session: Session, ticket: Ticket, note: str, act: Act) -> Ticket:
    """A note for colleagues; any state, no transition."""
    team = session.get_one(Team, ticket.team_id)
    return _changed(
        session=session,
        ticket=ticket,
        team=team,
        kind="note",
        act=act,
        before=ticket.state,
        note=note,
    )


def claim(*, session: Session, team: Team, agent: str, lease: timedelta, act: Act) -> Ticket | None:
    """The team's most urgent claimable ticket, assigned to the agent until the lease ends.

    Claimable: open, or assigned on a lease that has expired. `SKIP LOCKED` makes concurrent
    claimers on PostgreSQL pass over each other's rows instead of queueing behind them.
    """
    _check_member(team, agent)
    expired = and_(Ticket.state == TicketState.ASSIGNED, Ticket.lease_expires_at <= act.now)
    query = (
        select(Ticket)
        .where(Ticket.team_id == team.id, or_(Ticket.state == TicketState.OPEN, expired))
        .order_by(Ticket.priority, Ticket.due_at, Ticket.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    ticket = session.scalars(query).first()
    if ticket is None:
        return None
    before, previous = ticket.state, ticket.assignee
    ticket.state, ticket.assignee = TicketState.ASSIGNED, agent
    ticket.lease_expires_at = act.now + lease
    data = {
        "assignee": agent,
        "previous_assignee": previous,
        "lease_expires_at": ticket.lease_expires_at.isoformat(),
    }
    return _changed(
        session=session, ticket=ticket, team=team, kind="claimed", act=act, before=before, data=data
    )


def reroute(
    *, session: Session, ticket: Ticket, to: Team, reason: str, priority: str | None, act: Act
) -> Ticket:
    """Move the ticket to another team's queue, unassigned, its deadlines by that team's policy."""
    _require(ticket, action="re-route", allowed=ACTIVE)
    source = session.get_one(Team, ticket.team_id)
    if to.id == source.id and priority in (None, ticket.priority):
        raise IllegalTransition(f"the ticket is already in {to.slug!r}", details={"team": to.slug})
    before = ticket.state
    data = {"from_team": source.slug, "to_team": to.slug, "previous_assignee": ticket.assignee}
    if priority is not None and priority != ticket.priority:
        data["priority"] = f"{ticket.priority} -> {priority}"
        ticket.priority = priority
    _move(session=session, ticket=ticket, source=source, to=to)
    return _changed(
        session=session,
        ticket=ticket,
        team=to,
        kind="rerouted",
        act=act,
        before=before,
        note=reason,
        data=data,
    )


def _move(*, session: Session, ticket: Ticket, source: Team, to: Team) -> None:
    """Hand the ticket to another team (or keep it), unassigned, timed by that team's policy;
    the team it leaves hears that it left."""
    ticket.team_id = to.id
    ticket.assignee, ticket.lease_expires_at = None, None
    ticket.state = TicketState.OPEN if ticket.state is TicketState.ASSIGNED else ticket.state
    sla.schedule(session=session, ticket=ticket, team=to)
    if to.id != source.id:
        publish(session=session, ticket=ticket, team=source, type="ticket.moved")


@dataclass(frozen=True)
class Sweep:
    """What one pass of the timer did."""

    warnings: int = 0
    breaches: int = 0
    leases_released: int = 0


def sweep(*, session: Session, now: datetime, limit: int = 500) -> Sweep:
    """Raise due SLA warnings and breaches (escalating each breached ticket once per pass) and
    free expired leases."""
    warnings = breaches = 0
    escalated: set[int] = set()
    act = Act(actor=SLA_ACTOR, now=now)
    for alarm in sla.due_alarms(session=session, now=now, limit=limit):
        if not alarm.breach:
            _warn(session=session, alarm=alarm, act=act)
            warnings += 1
            continue
        _breach(session=session, alarm=alarm, act=act)
        breaches += 1
        if alarm.ticket.id not in escalated:
            escalated.add(alarm.ticket.id)
            _escalate(session=session, ticket=alarm.ticket, act=act)
    released = _release_expired_leases(session=session, act=act, limit=limit)
    return Sweep(warnings=warnings, breaches=breaches, leases_released=released)


def _warn(*, session: Session, alarm: sla.Alarm, act: Act) -> None:
    alarm.deadline.warned_at = act.now
    data = {"deadline": alarm.deadline.kind, "due_at": alarm.deadline.due_at.isoformat()}
    record_event(
        session=session,
        ticket=alarm.ticket,
        kind="sla_warning",
        actor=act.actor,
        data=data,
        at=act.now,
    )


def _breach(*, session: Session, alarm: sla.Alarm, act: Act) -> None:
    ticket, deadline = alarm.ticket, alarm.deadline
    deadline.breached_at = act.now
    deadline.warned_at = deadline.warned_at or act.now
    ticket.breached = True
    data = {"deadline": deadline.kind, "due_at": deadline.due_at.isoformat()}
    record_event(
        session=session, ticket=ticket, kind="sla_breached", actor=act.actor, data=data, at=act.now
    )


def _escalate(*, session: Session, ticket: Ticket, act: Act) -> None:
    """What the team's policy says a breach does: a higher priority (deadlines kept: they are
    already missed), another team (timed by that team's policy), or both."""
    team = session.get_one(Team, ticket.team_id)
    escalation = teams.policy_of(team).escalation
    before = ticket.state
    data: dict[str, object] = {}
    if escalation.raise_priority and ticket.priority != PRIORITIES[0]:
        higher = PRIORITIES[PRIORITIES.index(ticket.priority) - 1]
        data["priority"] = f"{ticket.priority} -> {higher}"
        ticket.priority = higher
    target = team
    if escalation.team is not None and escalation.team != team.slug:
        target = teams.get(session=session, slug=escalation.team)
        data["from_team"], data["to_team"] = team.slug, target.slug
        _move(session=session, ticket=ticket, source=team, to=target)
    if data:
        _changed(
            session=session,
            ticket=ticket,
            team=target,
            kind="escalated",
            act=act,
            before=before,
            data=data,
        )
    else:
        publish(session=session, ticket=ticket, team=team, type="ticket.updated")


def _release_expired_leases(*, session: Session, act: Act, limit: int) -> int:
    query = (
        select(Ticket)
        .where(Ticket.state == TicketState.ASSIGNED, Ticket.lease_expires_at <= act.now)
        .order_by(Ticket.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    released = 0
    for ticket in session.scalars(query).all():
        team = session.get_one(Team, ticket.team_id)
        data = {"previous_assignee": ticket.assignee}
        ticket.state, ticket.assignee, ticket.lease_expires_at = TicketState.OPEN, None, None
        _changed(
            session=session,
            ticket=ticket,
            team=team,
            kind="lease_expired",
            act=act,
            before=TicketState.ASSIGNED,
            data=data,
        )
        released += 1
    return released
