"""Tickets: open one for a routed mention, or add the mention to its conversation's open ticket."""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import Account
from app.db import utcnow
from app.errors import InvalidInput
from app.fields import MAX_BIGINT
from app.ingest.models import Mention
from app.outbox import service as outbox
from app.routing.models import RoutingDecision
from app.routing.schemas import Priority
from app.routing.service import Route
from app.teams.models import Team
from app.tickets.models import Ticket, TicketEvent, TicketState

SYSTEM_ACTOR = "system:router"


def open_or_join(*, session: Session, mention: Mention, label: str, route: Route) -> Ticket:
    """The conversation's open ticket with this mention added, or a new ticket for it."""
    assert route.team_id is not None
    assert route.priority is not None
    ticket = _open_ticket(session=session, conversation_key=mention.conversation_key)
    if ticket is None:
        return _open(session=session, mention=mention, label=label, route=route)
    _join(session=session, ticket=ticket, mention=mention, route=route)
    return ticket


def _open_ticket(*, session: Session, conversation_key: str) -> Ticket | None:
    query = select(Ticket).where(
        Ticket.conversation_key == conversation_key, Ticket.state != TicketState.RESOLVED
    )
    return session.scalars(query).first()


def _open(*, session: Session, mention: Mention, label: str, route: Route) -> Ticket:
    ticket = Ticket(
        team_id=route.team_id,
        conversation_key=mention.conversation_key,
        state=TicketState.OPEN,
        priority=route.priority,
        label=label,
        account_id=mention.account_id,
        first_mention_id=mention.id,
    )
    session.flush()  # what is pending belongs to the outer transaction, not to the savepoint below
    try:
        with session.begin_nested():
            session.add(ticket)
            session.flush()
    except IntegrityError:
        # Another transaction opened this thread's ticket since our look-up: join it instead.
        # Any other integrity error has no open ticket behind it and is raised again.
        opened = _open_ticket(session=session, conversation_key=mention.conversation_key)
        if opened is None:
            raise
        _join(session=session, ticket=opened, mention=mention, route=route)
        return opened
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            kind="created",
            actor=SYSTEM_ACTOR,
            to_state=ticket.state.value,
            mention_id=mention.id,
            data={"rule": route.rule_name, "table_version": route.table_version},
        )
    )
    _publish(
        session=session,
        ticket=ticket,
        type="ticket.created",
        team=route.team,
        mention_id=mention.id,
    )
    return ticket


def _join(*, session: Session, ticket: Ticket, mention: Mention, route: Route) -> None:
    """Add a follow-up to its thread's ticket; a more urgent follow-up raises the priority."""
    assert route.priority is not None
    data = {"rule": route.rule_name, "rule_team": route.team, "table_version": route.table_version}
    if route.priority < ticket.priority:  # "P1" < "P2": more urgent
        data["priority"] = f"{ticket.priority} -> {route.priority}"
        ticket.priority = route.priority
    ticket.updated_at = utcnow()
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            kind="mention_added",
            actor=SYSTEM_ACTOR,
            mention_id=mention.id,
            data=data,
        )
    )
    team = session.get_one(Team, ticket.team_id)
    _publish(
        session=session, ticket=ticket, type="ticket.updated", team=team.slug, mention_id=mention.id
    )


def _publish(
    *, session: Session, ticket: Ticket, type: str, team: str | None, mention_id: int
) -> None:
    outbox.record(
        session=session,
        type=type,
        subject_type="ticket",
        subject_id=str(ticket.id),
        team_id=ticket.team_id,
        data={
            "ticket": {
                "id": ticket.id,
                "team": team,
                "state": ticket.state.value,
                "priority": ticket.priority,
                "label": ticket.label,
                "conversation_key": ticket.conversation_key,
            },
            "mention_id": mention_id,
        },
    )


@dataclass(frozen=True)
class Cursor:
    priority: str
    opened_at: datetime
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.priority, self.opened_at.isoformat(), self.id]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        """The position a token names; anything this API did not give out is a 422."""
        try:
            priority, opened_at, ticket_id = json.loads(
                base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            )
            moment = datetime.fromisoformat(opened_at)
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


def _bad_cursor() -> InvalidInput:
    return InvalidInput("the cursor is not one this API gave out")


def queue(
    *, session: Session, team: Team, limit: int, cursor: Cursor | None
) -> tuple[list[Ticket], Cursor | None]:
    """Unresolved tickets of a team, most urgent priority first, then oldest first."""
    query = select(Ticket).where(Ticket.team_id == team.id, Ticket.state != TicketState.RESOLVED)
    if cursor is not None:
        query = query.where(_after(cursor))
    query = query.order_by(Ticket.priority, Ticket.opened_at, Ticket.id).limit(limit + 1)
    rows = list(session.scalars(query).all())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], Cursor(last.priority, last.opened_at, last.id)


def _after(cursor: Cursor) -> ColumnElement[bool]:
    return or_(
        Ticket.priority > cursor.priority,
        and_(Ticket.priority == cursor.priority, Ticket.opened_at > cursor.opened_at),
        and_(
            Ticket.priority == cursor.priority,
            Ticket.opened_at == cursor.opened_at,
            Ticket.id > cursor.id,
        ),
    )


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


def account_handles(*, session: Session, account_ids: Sequence[int]) -> dict[int, str]:
    rows = session.execute(
        select(Account.id, Account.handle).where(Account.id.in_(set(account_ids)))
    ).tuples()
    return dict(rows.all())
