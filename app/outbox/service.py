"""Record events in the outbox, inside the caller's transaction."""

import uuid
from typing import Any

from sqlalchemy.orm import Session

from app.db import utcnow
from app.outbox.models import OutboxEvent

PAYLOAD_VERSION = 1


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def record(
    *,
    session: Session,
    type: str,
    subject_type: str,
    subject_id: str,
    team_id: int | None,
    data: dict[str, Any],
) -> OutboxEvent:
    """Add an event row; it commits (or rolls back) with the change it describes."""
    occurred_at = utcnow()
    event_id = new_event_id()
    payload = {
        "id": event_id,
        "type": type,
        "version": PAYLOAD_VERSION,
        "occurred_at": occurred_at.isoformat(),
        "data": data,
    }
    event = OutboxEvent(
        id=event_id,
        type=type,
        subject_type=subject_type,
        subject_id=subject_id,
        team_id=team_id,
        payload=payload,
        occurred_at=occurred_at,
    )
    session.add(event)
    return event
