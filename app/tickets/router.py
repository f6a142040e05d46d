"""HTTP routes of queues and tickets. A key works the queues of its `queue:<team>` scopes; any
other team's queue or ticket answers 404, as if it did not exist."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from app.access.dependencies import Caller
from app.access.service import Principal
from app.config import Settings
from app.db import get_read_session, get_session, utcnow
from app.errors import InvalidInput
from app.fields import MAX_ROW_ID, Priority
from app.ingest import service as ingest
from app.routing.schemas import Explanation
from app.teams import service as teams
from app.tickets import queue, sla, workflow
from app.tickets.models import Ticket, TicketDeadline, TicketState
from app.tickets.schemas import (
    Acting,
    AssignIn,
    ClaimIn,
    DeadlineRead,
    EventRead,
    NoteIn,
    OptionalNoteIn,
    QueuePage,
    RouteIn,
    TicketDetail,
    TicketRead,
)

queues = APIRouter(prefix="/v1/teams", tags=["tickets"])
router = APIRouter(prefix="/v1/tickets", tags=["tickets"])
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
TeamSlug = Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
TicketId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


@queues.get("/{team}/tickets")
def team_queue(
    team: TeamSlug,
    session: ReadSessionDep,
    caller: Caller,
    state: Annotated[list[TicketState] | None, Query()] = None,
    priority: Annotated[list[Priority] | None, Query()] = None,
    label: Annotated[list[str] | None, Query(max_length=20)] = None,
    assignee: Annotated[str | None, Query(max_length=100)] = None,
    breached: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> QueuePage:
    """A team's queue, by priority (P1 first) then nearest deadline; unresolved unless `state`."""
    team_row = teams.visible(session=session, slug=team, teams=caller.teams)
    only = queue.QueueFilter(
        states=tuple(state or ()),
        priorities=tuple(priority or ()),
        labels=tuple(label or ()),
        assignee=assignee,
        breached=breached,
    )
    position = queue.Cursor.decode(cursor) if cursor else None
    rows, next_cursor = queue.queue(
        session=session, team=team_row, only=only, limit=limit, cursor=position
    )
    return QueuePage(
        team=team_row.slug,
        items=_ticket_reads(session=session, tickets=rows),
        next_cursor=next_cursor.encode() if next_cursor else None,
    )


@queues.post(
    "/{team}/tickets/claim",
    response_model=TicketRead,
    responses={204: {"description": "Nothing to claim: the queue is empty."}},
)
def claim(
    team: TeamSlug,
    session: SessionDep,
    caller: Caller,
    request: Request,
    body: ClaimIn | None = None,
) -> TicketRead | Response:
    """The next ticket of the queue, assigned to the caller on a lease; 204 if none is free."""
    body = body or ClaimIn()
    settings: Settings = request.app.state.settings
    team_row = teams.visible(session=session, slug=team, teams=caller.teams)
    lease = timedelta(seconds=body.lease_seconds or settings.claim_lease_seconds)
    act = _act(body, caller)
    ticket = workflow.claim(session=session, team=team_row, agent=act.actor, lease=lease, act=act)
    if ticket is None:
        session.rollback()
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return _commit(session=session, ticket=ticket)


@router.get("/{ticket_id}")
def get_ticket(ticket_id: TicketId, session: ReadSessionDep, caller: Caller) -> TicketDetail:
    """A ticket with its thread, its routing explained, its deadlines and its events."""
    ticket = queue.get_ticket(session=session, ticket_id=ticket_id, teams=caller.teams)
    [read] = _ticket_reads(session=session, tickets=[ticket])
    mention_ids = queue.thread_mention_ids(session=session, ticket_id=ticket.id)
    mentions = ingest.read_mentions(session=session, ids=mention_ids)
    deadlines = sorted(sla.deadlines_of(session=session, ticket=ticket).values(), key=_due)
    return TicketDetail(
        **read.model_dump(),
        deadlines=[DeadlineRead.model_validate(d) for d in deadlines],
        thread=[mentions[i] for i in mention_ids if i in mentions],
        routing=_explanation_for(
            caller, ingest.explain_routing(session=session, mention_id=ticket.first_mention_id)
        ),
        events=[
            EventRead.model_validate(e)
            for e in queue.events_of(session=session, ticket_id=ticket.id)
        ],
    )


@router.post("/{ticket_id}/assign")
def assign(ticket_id: TicketId, body: AssignIn, session: SessionDep, caller: Caller) -> TicketRead:
    """Give the ticket to an agent (from open or assigned)."""
    ticket = _locked(session=session, ticket_id=ticket_id, caller=caller)
    workflow.assign(session=session, ticket=ticket, assignee=body.assignee, act=_act(body, caller))
    return _commit(session=session, ticket=ticket)


@router.post("/{ticket_id}/unassign")
def unassign(
    ticket_id: TicketId, session: SessionDep, caller: Caller, body: Acting | None = None
) -> TicketRead:
    """Put an assigned ticket back in the queue."""
    ticket = _locked(session=session, ticket_id=ticket_id, caller=caller)
    workflow.unassign(session=session, ticket=ticket, act=_act(body, caller))
    return _commit(session=session, ticket=ticket)


@router.post("/{ticket_id}/notes")
def add_note(ticket_id: TicketId, body: NoteIn, session: SessionDep, caller: Caller) -> TicketRead:
    """Add a note to the ticket's trail (any state)."""
    ticket = _locked(session=session, ticket_id=ticket_id, caller=caller)
    workflow.add_note(session=session, ticket=ticket, note=body.note, act=_act(body, caller))
    return _commit(session=session, ticket=ticket)


@router.post("/{ticket_id}/waiting")
def set_waiting(
    ticket_id: TicketId, session: SessionDep, caller: Caller, body: OptionalNoteIn | None = None
) -> TicketRead:
    """The customer has been answered; the ticket waits on them (first response met)."""
    body = body or OptionalNoteIn()
    ticket = _locked(session=session, ticket_id=ticket_id, caller=caller)
    workflow.wait(session=session, ticket=ticket, note=body.note, act=_act(body, caller))
    return _commit(session=session, ticket=ticket)


@router.post("/{ticket_id}/resolve")
def resolve(
    ticket_id: TicketId, session: SessionDep, caller: Caller, body: OptionalNoteIn | None = None
) -> TicketRead:
    """Close the ticket."""
    body = body or OptionalNoteIn()
    ticket = _locked(session=session, ticket_id=ticket_id, caller=caller)
    workflow.resolve(session=session, ticket=ticket, note=body.note, act=_act(body, caller))
    return _commit(session=session, ticket=ticket)


@router.post("/{ticket_id}/reopen")
def reopen(
    ticket_id: TicketId, session: SessionDep, caller: Caller, body: OptionalNoteIn | None = None
) -> TicketRead:
    """Reopen a resolved ticket, unassigned, with fresh deadlines."""
    body = body or OptionalNoteIn()
    ticket = _locked(session=session, ticket_id=ticket_id, caller=caller)
    workflow.reopen(session=session, ticket=ticket, note=body.note, act=_act(body, caller))
    return _commit(session=session, ticket=ticket)


@router.post("/{ticket_id}/route")
def reroute(ticket_id: TicketId, body: RouteIn, session: SessionDep, caller: Caller) -> TicketRead:
    """Move the ticket to another team, with a reason (and optionally a new priority)."""
    ticket = _locked(session=session, ticket_id=ticket_id, caller=caller)
    target = teams.by_slugs(session=session, slugs=[body.team]).get(body.team)
    if target is None:
        raise InvalidInput(f"no team {body.team!r} to route to", details={"team": body.team})
    workflow.reroute(
        session=session,
        ticket=ticket,
        to=target,
        reason=body.reason,
        priority=body.priority,
        act=_act(body, caller),
    )
    return _commit(session=session, ticket=ticket)


def _explanation_for(caller: Principal, explanation: Explanation | None) -> Explanation | None:
    """The rules tried before the match show other teams' rules, keywords and VIP lists: only
    keys that may read the routing table see them; others see the rule that matched."""
    if explanation is None or caller.allows("routing:write"):
        return explanation
    return explanation.model_copy(update={"tried": [v for v in explanation.tried if v.matched]})


def _due(deadline: TicketDeadline) -> datetime:
    return deadline.due_at


def _actor(body: Acting | None, caller: Principal) -> str:
    return body.agent if body is not None and body.agent else caller.actor


def _act(body: Acting | None, caller: Principal) -> workflow.Act:
    return workflow.Act(actor=_actor(body, caller), now=utcnow(), via=caller.reference)


def _locked(*, session: Session, ticket_id: int, caller: Principal) -> Ticket:
    return queue.get_ticket(session=session, ticket_id=ticket_id, teams=caller.teams, lock=True)


def _commit(*, session: Session, ticket: Ticket) -> TicketRead:
    """The ticket as changed, read before the commit: after a re-route it may be in a team the
    caller does not work, and it is still theirs to see this once."""
    [read] = _ticket_reads(session=session, tickets=[ticket])
    session.commit()
    return read


def _ticket_reads(*, session: Session, tickets: list[Ticket]) -> list[TicketRead]:
    counts = queue.mention_counts(session=session, ticket_ids=[t.id for t in tickets])
    handles = queue.account_handles(session=session, account_ids=[t.account_id for t in tickets])
    slugs = queue.team_slugs(session=session, team_ids=[t.team_id for t in tickets])
    return [
        TicketRead(
            id=t.id,
            team=slugs[t.team_id],
            state=t.state,
            priority=t.priority,
            label=t.label,
            account=handles[t.account_id],
            tags=t.tags,
            assignee=t.assignee,
            lease_expires_at=t.lease_expires_at,
            due_at=t.due_at,
            breached=t.breached,
            conversation_key=t.conversation_key,
            first_mention_id=t.first_mention_id,
            mention_count=counts.get(t.id, 0),
            opened_at=t.opened_at,
            first_response_at=t.first_response_at,
            resolved_at=t.resolved_at,
            updated_at=t.updated_at,
        )
        for t in tickets
    ]
