"""Record events in the outbox, inside the caller's transaction."""

import os
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.db import insert_rows, utcnow
from app.outbox.models import OutboxEvent

PAYLOAD_VERSION = 1


def new_event_id() -> str:
    """'evt_' and a UUID of version 7 (RFC 9562) in hex: 48 bits of Unix time in milliseconds,
    then 74 random bits. Unique in practice, as a random UUID is, but ordered by time, so that
    each new event goes at the end of the ids' index: with random ids each insert wrote a page
    of that index of its own, and an event cost three times as much to insert past 100,000 of
    them (SQLite)."""
    value = time.time_ns() // 1_000_000 << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~_VERSION_AND_VARIANT | _V7
    return f"evt_{value:032x}"


# The version (4 bits at 76) and variant (2 bits at 62) fields, and their values for version 7.
_VERSION_AND_VARIANT = 0xF << 76 | 0x3 << 62
_V7 = 0x7 << 76 | 0x2 << 62


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
