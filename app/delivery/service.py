"""Webhook endpoints and deliveries: register, dispatch events, claim due deliveries, record
what each attempt gave. Sending itself (no transaction open) is in `app.delivery.sending`."""

import secrets as random_tokens
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from app.db import insert_rows
from app.delivery import signing
from app.delivery.models import Delivery, DeliveryAttempt, DeliveryState, WebhookEndpoint
from app.errors import NotFound
from app.outbox import service as outbox
from app.outbox.models import OutboxEvent
from app.teams.models import Team

# After attempt n fails, the next waits RETRY_SCHEDULE[n - 1] (give or take the jitter);
# after the last one the delivery has failed and waits for a replay.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
ROTATION_OVERLAP = timedelta(hours=24)


def create_endpoint(
    *, session: Session, team: Team, url: str, event_types: Sequence[str], enabled: bool
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (returned this once)."""
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        team_id=team.id,
        url=url,
        event_types=sorted(set(event_types)),
        secrets=[{"secret": secret, "expires_at": None}],
        enabled=enabled,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def rotate_secret(*, session: Session, endpoint: WebhookEndpoint, now: datetime) -> str:
    """A new secret; the previous one keeps signing beside it for a day, while the CRM updates."""
    secret = signing.new_secret()
    expires = (now + ROTATION_OVERLAP).isoformat()
    previous = [
        {**s, "expires_at": s["expires_at"] or expires} for s in live_secrets(endpoint, now)
    ]
    endpoint.secrets = [{"secret": secret, "expires_at": None}, *previous]
    return secret


def live_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[dict[str, Any]]:
    return [
        s
        for s in endpoint.secrets
        if s["expires_at"] is None or datetime.fromisoformat(s["expires_at"]) > now
    ]


def endpoints_of(*, session: Session, team: Team) -> Sequence[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.team_id == team.id)
    return session.scalars(query.order_by(WebhookEndpoint.id)).all()


def get_endpoint(*, session: Session, team: Team, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.team_id != team.id:
        raise NotFound(f"no webhook endpoint {endpoint_id}", details={"endpoint_id": endpoint_id})
    return endpoint


def dispatch(*, session: Session, now: datetime, limit: int) -> int:
    """Make the deliveries of events not yet dispatched: one per endpoint of the event's team
    that takes its type. A disabled endpoint's deliveries wait until it is enabled again. Events
    are claimed, so two workers never dispatch one twice.

    Set by set, and without the payloads: loading each event as an object (its payload parsed)
    and updating it row by row cost a tenth of the CPU of a server taking single posts."""
    query = (
        select(OutboxEvent.id, OutboxEvent.team_id, OutboxEvent.type, OutboxEvent.occurred_at)
        .where(OutboxEvent.dispatched_at.is_(None))
        .order_by(OutboxEvent.occurred_at, OutboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    events = session.execute(query).all()
    if not events:
        return 0
    endpoints = _team_endpoints(session=session, team_ids={e.team_id for e in events})
    insert_rows(
        session,
        Delivery,
        [
            _delivery(event_id, occurred_at, endpoint, now)
            for event_id, team_id, type_, occurred_at in events
            for endpoint in endpoints.get(team_id, [])
            if not endpoint.event_types or type_ in endpoint.event_types
        ],
    )
    ids = [event.id for event in events]
    for start in range(0, len(ids), DISPATCH_CHUNK):
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(ids[start : start + DISPATCH_CHUNK]))
            .values(dispatched_at=now)
            .execution_options(synchronize_session=False)
        )
    return len(events)


DISPATCH_CHUNK = 500  # event ids per UPDATE ... IN (...)


def _team_endpoints(
    *, session: Session, team_ids: set[int | None]
) -> dict[int | None, list[WebhookEndpoint]]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.team_id.in_([t for t in team_ids if t]))
    found: dict[int | None, list[WebhookEndpoint]] = {}
    for endpoint in session.scalars(query):
        found.setdefault(endpoint.team_id, []).append(endpoint)
    return found


def _delivery(
    event_id: str, occurred_at: datetime, endpoint: WebhookEndpoint, now: datetime
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "endpoint_id": endpoint.id,
        "state": DeliveryState.PENDING,
        "occurred_at": occurred_at,
        "attempts": 0,
        "next_attempt_at": now,
    }


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds: what to send, where, signed with what."""

    delivery_id: int
    token: str
    attempt: int
    event_id: str
    payload: dict[str, Any]
    url: str
    secrets: list[str] = field(repr=False)


def claim(*, session: Session, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """Due deliveries, oldest event first, each held under a lease and a token of this claim.

    On PostgreSQL the rows are locked `SKIP LOCKED`, so workers take different rows; on SQLite the
    claiming transaction holds the write lock, so claims are one at a time.
    """
    due = or_(
        and_(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now),
        and_(Delivery.state == DeliveryState.SENDING, Delivery.lease_expires_at <= now),
    )
    query = (
        select(Delivery, WebhookEndpoint, OutboxEvent)
        .join(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .where(due, WebhookEndpoint.enabled)
        .order_by(Delivery.occurred_at, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    claimed = []
    for delivery, endpoint, event in session.execute(query).tuples():
        if delivery.attempts > len(RETRY_SCHEDULE):  # its workers died on every attempt
            delivery.state, delivery.claim_token = DeliveryState.FAILED, None
            delivery.last_error = "no attempt was recorded: every worker sending it stopped"
            continue
        token = random_tokens.token_hex(16)
        delivery.state = DeliveryState.SENDING
        delivery.claim_token = token
        delivery.lease_expires_at = now + lease
        delivery.attempts += 1
        claimed.append(
            Claimed(
                delivery_id=delivery.id,
                token=token,
                attempt=delivery.attempts,
                event_id=event.id,
                payload=event.payload,
                url=endpoint.url,
                secrets=[s["secret"] for s in live_secrets(endpoint, now)],
            )
        )
    return claimed


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: an HTTP status, or an error before any answer."""

    status: int | None
    duration_ms: float
    error: str | None = None
    body: str | None = None
    retry_after: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def record(
    *,
    session: Session,
    claimed: Claimed,
    outcome: Outcome,
    now: datetime,
    jitter: float,
    disable_after: timedelta,
) -> Delivery | None:
    """Store the attempt and what follows from it; None if the claim was lost meanwhile (its
    lease ran out and another worker took the delivery: that worker's outcome counts)."""
    [recorded] = record_all(
        session=session,
        results=[(claimed, outcome, jitter)],
        now=now,
        disable_after=disable_after,
    )
    return recorded


def record_all(
    *,
    session: Session,
    results: Sequence[tuple[Claimed, Outcome, float]],
    now: datetime,
    disable_after: timedelta,
) -> list[Delivery | None]:
    """`record` for a batch of (claim, outcome, jitter), with one read of the rows it changes."""
    held = _still_held(session=session, claims=[claimed for claimed, _, _ in results])
    # Locked in id order, so that two workers recording at once cannot deadlock on them.
    endpoints = {
        e.id: e
        for e in session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_({d.endpoint_id for d in held.values()}))
            .order_by(WebhookEndpoint.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    recorded: list[Delivery | None] = []
    for claimed, outcome, jitter in results:
        delivery = held.get(claimed.delivery_id)
        if delivery is not None:
            _apply(
                session, delivery, endpoints[delivery.endpoint_id], claimed, outcome, now, jitter
            )
            if not outcome.delivered:
                _watch_endpoint(
                    session=session,
                    endpoint=endpoints[delivery.endpoint_id],
                    outcome=outcome,
                    now=now,
                    after=disable_after,
                )
        recorded.append(delivery)
    return recorded


def _still_held(*, session: Session, claims: Sequence[Claimed]) -> dict[int, Delivery]:
    """The claimed deliveries whose claim is still this worker's, locked until commit."""
    tokens = {claimed.delivery_id: claimed.token for claimed in claims}
    rows = session.scalars(
        select(Delivery)
        .where(Delivery.id.in_(tokens))
        .order_by(Delivery.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {d.id: d for d in rows if d.claim_token is not None and d.claim_token == tokens[d.id]}


def _apply(
    session: Session,
    delivery: Delivery,
    endpoint: WebhookEndpoint,
    claimed: Claimed,
    outcome: Outcome,
    now: datetime,
    jitter: float,
) -> None:
    # PostgreSQL text cannot hold NUL, and a CRM's answer may: one odd byte must not lose it.
    error = outcome.error.replace("\0", "")[:500] if outcome.error else None
    body = outcome.body.replace("\0", "") if outcome.body else outcome.body
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            attempt=claimed.attempt,
            at=now,
            status_code=outcome.status,
            duration_ms=outcome.duration_ms,
            error=error,
            response_body=body,
        )
    )
    delivery.claim_token, delivery.lease_expires_at = None, None
    delivery.last_status, delivery.last_error = outcome.status, error
    if outcome.delivered:
        delivery.state, delivery.delivered_at = DeliveryState.DELIVERED, now
        endpoint.failing_since = None
    else:
        _failed_attempt(session=session, delivery=delivery, outcome=outcome, now=now, jitter=jitter)


def _failed_attempt(
    *, session: Session, delivery: Delivery, outcome: Outcome, now: datetime, jitter: float
) -> None:
    if outcome.status == 410 or delivery.attempts > len(RETRY_SCHEDULE):
        delivery.state = DeliveryState.FAILED
        return
    wait = RETRY_SCHEDULE[delivery.attempts - 1] * jitter
    if outcome.retry_after is not None:
        wait = max(wait, outcome.retry_after)
    delivery.state, delivery.next_attempt_at = DeliveryState.PENDING, now + wait


def _watch_endpoint(
    *,
    session: Session,
    endpoint: WebhookEndpoint,
    outcome: Outcome,
    now: datetime,
    after: timedelta,
) -> None:
    """410 Gone disables the endpoint at once; failing for `after` disables it too."""
    endpoint.failing_since = endpoint.failing_since or now
    reason = None
    if outcome.status == 410:
        reason = "the endpoint answered 410 Gone"
    elif now - endpoint.failing_since >= after:
        reason = f"every attempt failed since {endpoint.failing_since.isoformat()}"
    if reason is None or not endpoint.enabled:
        return
    endpoint.enabled, endpoint.disabled_reason = False, reason
    outbox.record(
        session=session,
        type="webhook.disabled",
        subject_type="webhook_endpoint",
        subject_id=str(endpoint.id),
        team_id=endpoint.team_id,
        data={"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason},
    )


def replay(*, session: Session, delivery: Delivery, now: datetime) -> Delivery:
    """Send a delivery again from its first attempt (a failed one, or a delivered one)."""
    delivery.state, delivery.attempts, delivery.next_attempt_at = DeliveryState.PENDING, 0, now
    delivery.claim_token = delivery.lease_expires_at = None
    return delivery


def replay_failed(*, session: Session, endpoint: WebhookEndpoint, now: datetime) -> int:
    """Every failed delivery of the endpoint, sent again."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.endpoint_id == endpoint.id, Delivery.state == DeliveryState.FAILED)
        .values(state=DeliveryState.PENDING, attempts=0, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def deliveries_of(
    *, session: Session, endpoint: WebhookEndpoint, state: DeliveryState | None, limit: int
) -> Sequence[Delivery]:
    query = select(Delivery).where(Delivery.endpoint_id == endpoint.id)
    if state is not None:
        query = query.where(Delivery.state == state)
    return session.scalars(query.order_by(Delivery.id.desc()).limit(limit)).all()


def attempts_of(
    *, session: Session, delivery_ids: Sequence[int]
) -> dict[int, list[DeliveryAttempt]]:
    query = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id.in_(delivery_ids))
        .order_by(DeliveryAttempt.id)
    )
    found: dict[int, list[DeliveryAttempt]] = {}
    for attempt in session.scalars(query):
        found.setdefault(attempt.delivery_id, []).append(attempt)
    return found
