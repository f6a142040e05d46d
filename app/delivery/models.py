"""Webhook endpoints of teams, one delivery per event and endpoint, and each attempt's record."""

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, text_enum, utcnow


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Event types sent; empty means every type.
    event_types: Mapped[list[str]] = mapped_column(default=list)
    # Signing secrets, newest first: [{"secret": "whsec_...", "expires_at": iso or null}]. During
    # a rotation the previous one signs too until it expires.
    secrets: Mapped[list[Any]] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    # Since when every attempt has failed (None after a success): a long outage disables it.
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Delivery(Base):
    """One event for one endpoint: retried until delivered, or failed after the last attempt."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index(None, "state", "next_attempt_at"),
        Index(None, "endpoint_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_events.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    state: Mapped[DeliveryState] = mapped_column(
        text_enum(DeliveryState), default=DeliveryState.PENDING
    )
    occurred_at: Mapped[datetime]  # the event's time: deliveries go out in this order
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    # While sending: whose claim it is and until when; a worker that dies leaves an expired lease.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    duration_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(500))
    response_body: Mapped[str | None] = mapped_column(Text)


class InboundWebhook(Base):
    """The id of every signed webhook received, so that a replayed one is refused."""

    __tablename__ = "inbound_webhooks"
    __table_args__ = (UniqueConstraint("source", "webhook_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    webhook_id: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
