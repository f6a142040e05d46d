"""API shapes of webhook endpoints and deliveries."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.delivery.models import DeliveryState

EventType = Literal[
    "ticket.created",
    "ticket.updated",
    "ticket.resolved",
    "ticket.moved",
    "mention.routed",
    "alert.raised",
    "webhook.disabled",
]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000, examples=["https://crm.example.com/hooks/aig"])
    event_types: list[EventType] = Field(default_factory=list, description="empty: every type")
    enabled: bool = True


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=8, max_length=2000)
    event_types: list[EventType] | None = None
    enabled: bool | None = None


class EndpointRead(BaseModel):
    """An endpoint as listed: never its secrets."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    team: str
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime


class EndpointCreated(EndpointRead):
    """The answer to a creation or a rotation: the signing secret, shown this once."""

    secret: str


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    at: datetime
    status_code: int | None
    duration_ms: float
    error: str | None
    response_body: str | None


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    endpoint_id: int
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    occurred_at: datetime
    history: list[AttemptRead] = Field(default_factory=list)


class Replayed(BaseModel):
    replayed: int
