"""The delivery job: dispatch new events, claim due deliveries, send them (no transaction open
while a CRM answers), and record each outcome in a transaction of its own."""

import json
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import utcnow
from app.delivery import sender, service, signing, ssrf

USER_AGENT = "Aiguilleur-Webhooks/1"


def run(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Callable[[], datetime] = utcnow,
    resolver: ssrf.Resolver = ssrf.system_resolver,
    rng: random.Random | None = None,
) -> int:
    """One pass: returns how many attempts were made."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not security
    with sessions() as session, session.begin():
        service.dispatch(session=session, now=clock(), limit=settings.delivery_batch * 4)
    with sessions() as session, session.begin():
        claimed = service.claim(
            session=session,
            now=clock(),
            limit=settings.delivery_batch,
            lease=timedelta(seconds=settings.delivery_lease_seconds),
        )
    if not claimed:
        return 0

    def attempt_one(delivery: service.Claimed) -> service.Outcome:
        return attempt(delivery, settings=settings, resolver=resolver, now=clock())

    with ThreadPoolExecutor(max_workers=min(settings.delivery_concurrency, len(claimed))) as pool:
        outcomes = list(pool.map(attempt_one, claimed))
    # One transaction for the batch's outcomes: if it fails, the leases run out and the
    # deliveries are sent again (at least once, with the same webhook-id).
    with sessions() as session, session.begin():
        service.record_all(
            session=session,
            results=[
                (delivery, outcome, rng.uniform(0.8, 1.2))
                for delivery, outcome in zip(claimed, outcomes, strict=True)
            ],
            now=clock(),
            disable_after=timedelta(hours=settings.webhook_disable_after_hours),
        )
    return len(claimed)


def attempt(
    delivery: service.Claimed, *, settings: Settings, resolver: ssrf.Resolver, now: datetime
) -> service.Outcome:
    """Check the URL again (its name may resolve elsewhere now), sign and post the event."""
    try:
        destination = ssrf.check_url(
            delivery.url, allow_http_loopback=settings.webhooks_allow_loopback, resolver=resolver
        )
    except ssrf.UnsafeDestination as refusal:
        return service.Outcome(status=None, duration_ms=0.0, error=f"refused: {refusal}")
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        **signing.headers(
            secrets=delivery.secrets,
            message_id=delivery.event_id,
            timestamp=int(now.timestamp()),
            body=body,
        ),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    try:
        response = sender.post(
            destination, headers=headers, body=body, timeout=settings.webhook_timeout_seconds
        )
    except sender.SendError as error:
        return service.Outcome(status=None, duration_ms=0.0, error=str(error))
    return service.Outcome(
        status=response.status,
        duration_ms=response.duration_ms,
        body=response.body.decode("utf-8", errors="replace"),
        retry_after=retry_after(response.headers.get("retry-after"), now),
    )


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A `Retry-After` header (seconds, or an HTTP date), capped at a day."""
    if not value:
        return None
    try:
        wait = timedelta(seconds=int(value))
    except ValueError:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return min(max(wait, timedelta(0)), timedelta(days=1))
