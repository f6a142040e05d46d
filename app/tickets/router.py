"""HTTP routes of ticket queues."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.orm import Session

from app.db import get_read_session
from app.teams import service as teams
from app.tickets import service
from app.tickets.models import Ticket
from app.tickets.schemas import QueuePage, TicketRead

router = APIRouter(prefix="/v1/teams", tags=["tickets"])


@router.get("/{team}/tickets")
def team_queue(
    team: Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")],
    session: Annotated[Session, Depends(get_read_session)],
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> QueuePage:
    """A team's queue: unresolved tickets by priority (P1 first), then oldest first."""
    team_row = teams.get(session=session, slug=team)
    position = service.Cursor.decode(cursor) if cursor else None
    rows, next_cursor = service.queue(session=session, team=team_row, limit=limit, cursor=position)
    counts = service.mention_counts(session=session, ticket_ids=[t.id for t in rows])
    handles = service.account_handles(session=session, account_ids=[t.account_id for t in rows])
    return QueuePage(
        team=team_row.slug,
        items=[
            _ticket_read(t, team_row.slug, handles[t.account_id], counts.get(t.id, 0)) for t in rows
        ],
        next_cursor=next_cursor.encode() if next_cursor else None,
    )


def _ticket_read(ticket: Ticket, team: str, account: str, mention_count: int) -> TicketRead:
    return TicketRead(
        id=ticket.id,
        team=team,
        state=ticket.state,
        priority=ticket.priority,
        label=ticket.label,
        account=account,
        conversation_key=ticket.conversation_key,
        first_mention_id=ticket.first_mention_id,
        mention_count=mention_count,
        opened_at=ticket.opened_at,
        updated_at=ticket.updated_at,
    )
