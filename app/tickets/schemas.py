"""API shapes of tickets and queues."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.tickets.models import TicketState


class TicketRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    team: str
    state: TicketState
    priority: str
    label: str
    account: str
    conversation_key: str
    first_mention_id: int
    mention_count: int
    opened_at: datetime
    updated_at: datetime


class QueuePage(BaseModel):
    """One page of a team's queue; pass `next_cursor` back as `cursor` for the next page."""

    team: str
    items: list[TicketRead]
    next_cursor: str | None
