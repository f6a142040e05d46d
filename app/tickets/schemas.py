"""API shapes of tickets, queues and the actions agents take on them."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.fields import Actor, Priority, Text
from app.ingest.schemas import MentionRead
from app.routing.schemas import Explanation
from app.teams.schemas import Slug
from app.tickets.models import TicketState

Note = Field(min_length=1, max_length=10_000)


class TicketRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    team: str
    state: TicketState
    priority: str
    label: str
    account: str
    tags: list[str]
    assignee: str | None
    lease_expires_at: datetime | None
    due_at: datetime
    breached: bool
    conversation_key: str
    first_mention_id: int
    mention_count: int
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime


class QueuePage(BaseModel):
    """One page of a team's queue; pass `next_cursor` back as `cursor` for the next page."""

    team: str
    items: list[TicketRead]
    next_cursor: str | None


class DeadlineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    warn_at: datetime
    due_at: datetime
    warned_at: datetime | None
    breached_at: datetime | None
    met_at: datetime | None


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    actor: str
    from_state: str | None
    to_state: str | None
    mention_id: int | None
    note: str | None
    data: dict[str, Any] | None
    at: datetime


class TicketDetail(TicketRead):
    """A ticket in full: its thread, why it was routed where it was, and its audit trail."""

    deadlines: list[DeadlineRead]
    thread: list[MentionRead]
    routing: Explanation | None
    events: list[EventRead]


class Acting(BaseModel):
    """Who acts: an agent's identifier; without one, the API key's name (`key:<name>`)."""

    model_config = ConfigDict(extra="forbid")

    agent: Actor | None = None


class NoteIn(Acting):
    note: Text = Note


class OptionalNoteIn(Acting):
    note: Text | None = Field(default=None, min_length=1, max_length=10_000)


class AssignIn(Acting):
    assignee: Actor


class ClaimIn(Acting):
    lease_seconds: int | None = Field(default=None, gt=0, le=86_400)


class RouteIn(Acting):
    team: Slug
    reason: Text = Field(min_length=1, max_length=2_000)
    priority: Priority | None = None
