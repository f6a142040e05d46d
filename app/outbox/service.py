"""Record events in the outbox, inside the caller's transaction."""

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.db import insert_rows, utcnow
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
    event = OutboxEvent(
        **row(
            type=type, subject_type=subject_type, subject_id=subject_id, team_id=team_id, data=data
        )
    )
    session.add(event)
    return event


def record_many(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the events of `row` in one statement: a batch's events without an ORM object each
    (through the table: the ORM's bulk path costs more per row than the insert)."""
    insert_rows(session, OutboxEvent, rows)


def row(
    *, type: str, subject_type: str, subject_id: str, team_id: int | None, data: dict[str, Any]
) -> dict[str, Any]:
    """The columns of a new event, its payload (what the team's systems receive) included."""
    occurred_at = utcnow()
    event_id = new_event_id()
    payload = {
        "id": event_id,
        "type": type,
        "version": PAYLOAD_VERSION,
        "occurred_at": occurred_at.isoformat(),
        "data": data,
    }
    return {
        "id": event_id,
        "type": type,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "team_id": team_id,
        "payload": payload,
        "occurred_at": occurred_at,
        "dispatched_at": None,
    }
