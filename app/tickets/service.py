"""Tickets as ingest sees them: open one for a routed mention, join its conversation's open
ticket, or reopen the conversation's recently resolved one. Plus the audit and outbox records
every change of a ticket writes."""

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.outbox import service as outbox
from app.routing.service import Route
from app.teams.models import Team
from app.tickets import sla
from app.tickets.models import Ticket, TicketEvent, TicketState

SYSTEM_ACTOR = "system:router"


class ThreadPost(Protocol):
    """What tickets need of a post: its id, its thread and the account it addresses (a stored
    `Mention`, or one ingest has just written)."""

    @property
    def id(self) -> int: ...

    @property
    def conversation_key(self) -> str: ...

    @property
    def account_id(self) -> int: ...


class TicketView(Protocol):
    """What an event's payload says of a ticket (a stored `Ticket`, or one ingest has just
    opened in bulk)."""

    @property
    def id(self) -> int: ...

    @property
    def state(self) -> TicketState: ...

    @property
    def priority(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def assignee(self) -> str | None: ...

    @property
    def tags(self) -> list[str]: ...

    @property
    def conversation_key(self) -> str: ...

    @property
    def due_at(self) -> datetime: ...

    @property
    def breached(self) -> bool: ...


def open_or_join(
    *, session: Session, mention: ThreadPost, label: str, route: Route, reopen_within: timedelta
) -> Ticket:
    """The conversation's open ticket with this mention added (a resolved one is reopened if
    recent enough), or a new ticket for it."""
    assert route.team_id is not None
    assert route.priority is not None
    ticket = open_ticket(session=session, conversation_key=mention.conversation_key, lock=True)
    if ticket is None:
        ticket = _reopen_recent(session=session, mention=mention, within=reopen_within)
    if ticket is None:
        return _open(session=session, mention=mention, label=label, route=route)
    _join(session=session, ticket=ticket, mention=mention, route=route)
    return ticket


def open_ticket(*, session: Session, conversation_key: str, lock: bool = False) -> Ticket | None:
    """The conversation's unresolved ticket, read afresh; with `lock`, held until commit so that
    an agent's change and this post's apply one after the other (PostgreSQL)."""
    query = select(Ticket).where(
        Ticket.conversation_key == conversation_key, Ticket.state != TicketState.RESOLVED
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).first()


def _open(*, session: Session, mention: ThreadPost, label: str, route: Route) -> Ticket:
    now = utcnow()
    ticket = Ticket(
        team_id=route.team_id,
        conversation_key=mention.conversation_key,
        state=TicketState.OPEN,
        priority=route.priority,
        label=label,
        account_id=mention.account_id,
        first_mention_id=mention.id,
        tags=list(route.tags),
        opened_at=now,
        cycle_started_at=now,
        due_at=now,  # replaced by the schedule below, once the ticket has an id
    )
    session.flush()  # what is pending belongs to the outer transaction, not to the savepoint below
    try:
        with session.begin_nested():
            session.add(ticket)
            session.flush()
    except IntegrityError:
        # Another transaction opened this thread's ticket since our look-up: join it instead.
        # Any other integrity error has no open ticket behind it and is raised again.
        opened = open_ticket(session=session, conversation_key=mention.conversation_key, lock=True)
        if opened is None:
            raise
        _join(session=session, ticket=opened, mention=mention, route=route)
        return opened
    team = session.get_one(Team, ticket.team_id)
    sla.schedule(session=session, ticket=ticket, team=team)
    record_event(
        session=session,
        ticket=ticket,
        kind="created",
        actor=SYSTEM_ACTOR,
        to_state=ticket.state,
        mention_id=mention.id,
        data={"rule": route.rule_name, "table_version": route.table_version},
    )
    publish(session=session, ticket=ticket, team=team, type="ticket.created", mention_id=mention.id)
    return ticket


def _reopen_recent(*, session: Session, mention: ThreadPost, within: timedelta) -> Ticket | None:
    """Reopen the conversation's last ticket if it was resolved within the window.

    The conditional update lets one of two concurrent posts reopen it; the other finds it open.
    """
    since = utcnow() - within
    last = session.scalars(
        select(Ticket)
        .where(Ticket.conversation_key == mention.conversation_key, Ticket.resolved_at >= since)
        .order_by(Ticket.resolved_at.desc(), Ticket.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return None
    session.flush()
    try:
        with session.begin_nested():
            reopened = session.execute(
                update(Ticket)
                .where(Ticket.id == last.id, Ticket.state == TicketState.RESOLVED)
                .values(state=TicketState.OPEN, assignee=None, lease_expires_at=None)
                .returning(Ticket.id)
                .execution_options(synchronize_session=False)
            ).first()
    except IntegrityError:
        reopened = None  # a new ticket was opened for the thread meanwhile
    if reopened is None:  # another post reopened it, or opened a new one: join that
        return open_ticket(session=session, conversation_key=mention.conversation_key, lock=True)
    session.refresh(last)  # the row as updated (and locked) by this transaction
    team = session.get_one(Team, last.team_id)
    sla.restart(session=session, ticket=last, team=team, at=utcnow())
    record_event(
        session=session,
        ticket=last,
        kind="reopened",
        actor=SYSTEM_ACTOR,
        from_state=TicketState.RESOLVED,
        to_state=TicketState.OPEN,
        mention_id=mention.id,
        note="a new post in the conversation",
    )
    return last


def _join(*, session: Session, ticket: Ticket, mention: ThreadPost, route: Route) -> None:
    """Add a follow-up to its thread's ticket; a more urgent follow-up raises the priority, and
    a customer's answer to a ticket waiting on them puts it back in the queue."""
    assert route.priority is not None
    data: dict[str, Any] = {
        "rule": route.rule_name,
        "rule_team": route.team,
        "table_version": route.table_version,
    }
    team = session.get_one(Team, ticket.team_id)
    if route.priority < ticket.priority:  # "P1" < "P2": more urgent
        data["priority"] = f"{ticket.priority} -> {route.priority}"
        ticket.priority = route.priority
        sla.schedule(session=session, ticket=ticket, team=team)
    from_state = ticket.state
    if ticket.state is TicketState.WAITING:
        ticket.state = TicketState.ASSIGNED if ticket.assignee else TicketState.OPEN
    ticket.updated_at = utcnow()
    record_event(
        session=session,
        ticket=ticket,
        kind="mention_added",
        actor=SYSTEM_ACTOR,
        from_state=from_state if from_state != ticket.state else None,
        to_state=ticket.state if from_state != ticket.state else None,
        mention_id=mention.id,
        data=data,
    )
    publish(session=session, ticket=ticket, team=team, type="ticket.updated", mention_id=mention.id)


def record_event(
    *,
    session: Session,
    ticket: Ticket,
    kind: str,
    actor: str,
    from_state: TicketState | None = None,
    to_state: TicketState | None = None,
    mention_id: int | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> TicketEvent:
    """One row of the ticket's audit trail."""
    event = TicketEvent(
        ticket_id=ticket.id,
        kind=kind,
        actor=actor,
        from_state=from_state.value if from_state else None,
        to_state=to_state.value if to_state else None,
        mention_id=mention_id,
        note=note,
        data=data,
        at=at or utcnow(),
    )
    session.add(event)
    return event


def publish(
    *, session: Session, ticket: Ticket, team: Team, type: str, mention_id: int | None = None
) -> None:
    """The ticket's new state as an outbox event for `team`'s systems (for `ticket.moved`, the
    team it left; the payload names the team that has it now)."""
    holder = team if team.id == ticket.team_id else session.get_one(Team, ticket.team_id)
    outbox.record(
        session=session,
        **publication(ticket=ticket, team=team, holder=holder, type=type, mention_id=mention_id),
    )


class TeamNames(Protocol):
    """What an event's payload says of a team (a stored `Team`, or its terms as a loaded
    routing table holds them)."""

    @property
    def id(self) -> int: ...

    @property
    def slug(self) -> str: ...


def publication(
    *,
    ticket: TicketView,
    team: TeamNames,
    holder: TeamNames,
    type: str,
    mention_id: int | None,
) -> dict[str, Any]:
    """What `publish` records (the arguments of `outbox.record` and `outbox.row`): the ticket's
    state, for `team`, while `holder` has the ticket."""
    return {
        "type": type,
        "subject_type": "ticket",
        "subject_id": str(ticket.id),
        "team_id": team.id,
        "data": {
            "ticket": {
                "id": ticket.id,
                "team": holder.slug,
                "state": ticket.state.value,
                "priority": ticket.priority,
                "label": ticket.label,
                "assignee": ticket.assignee,
                "tags": ticket.tags,
                "conversation_key": ticket.conversation_key,
                "due_at": ticket.due_at.isoformat(),
                "breached": ticket.breached,
            },
            "mention_id": mention_id,
            **({"moved_from": team.slug} if holder is not team else {}),
        },
    }
