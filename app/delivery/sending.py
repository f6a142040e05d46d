"""The delivery job: dispatch new events, claim due deliveries, send them (no transaction open
while a CRM answers), and record the outcomes together."""

import json
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import utcnow
from app.delivery import sender, service, signing, ssrf

USER_AGENT = "Aiguilleur-Webhooks/1"
log = logging.getLogger(__name__)


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
            limit=claim_size(settings),
            lease=timedelta(seconds=settings.delivery_lease_seconds),
        )
    if not claimed:
        return 0

    def attempt_one(delivery: service.Claimed) -> service.Outcome:
        return attempt(delivery, settings=settings, resolver=resolver, now=clock())

    with ThreadPoolExecutor(max_workers=min(settings.delivery_concurrency, len(claimed))) as pool:
        outcomes = list(pool.map(attempt_one, claimed))
    results = [
        (delivery, outcome, rng.uniform(0.8, 1.2))
        for delivery, outcome in zip(claimed, outcomes, strict=True)
    ]
    disable_after = timedelta(hours=settings.webhook_disable_after_hours)
    try:  # one transaction for the batch, the fast way...
        with sessions() as session, session.begin():
            service.record_all(
                session=session, results=results, now=clock(), disable_after=disable_after
            )
    except SQLAlchemyError:  # ...and one each if a row is refused, so the others still count
        log.exception("recording %d outcomes failed; recording them one by one", len(results))
        for result in results:
            _record_alone(sessions, result, now=clock(), disable_after=disable_after)
    return len(claimed)


def claim_size(settings: Settings) -> int:
    """As many deliveries as can be sent within half a lease, even if every attempt times out:
    a pass must record its outcomes while its claims are still its own."""
    rounds = max(1, int(settings.delivery_lease_seconds / 2 // settings.webhook_timeout_seconds))
    return min(settings.delivery_batch, settings.delivery_concurrency * rounds)


def _record_alone(
    sessions: sessionmaker[Session],
    result: tuple[service.Claimed, service.Outcome, float],
    *,
    now: datetime,
    disable_after: timedelta,
) -> None:
    try:
        with sessions() as session, session.begin():
            service.record_all(
                session=session, results=[result], now=now, disable_after=disable_after
            )
    except SQLAlchemyError:  # its lease runs out and it is sent again
        log.exception("recording the outcome of delivery %d failed", result[0].delivery_id)


def attempt(
    delivery: service.Claimed, *, settings: Settings, resolver: ssrf.Resolver, now: datetime
) -> service.Outcome:
    """Check the URL again (its name may resolve elsewhere now), sign and post the event.
    Whatever goes wrong is an outcome to record, never an exception that would lose the batch."""
    started = time.perf_counter()
    try:
        return _attempt(delivery, settings=settings, resolver=resolver, now=now)
    except Exception as error:  # a bug or an unexpected answer: recorded, retried
        log.exception("delivery %d failed unexpectedly", delivery.delivery_id)
        elapsed = (time.perf_counter() - started) * 1000
        return service.Outcome(status=None, duration_ms=elapsed, error=repr(error))


def _attempt(
    delivery: service.Claimed, *, settings: Settings, resolver: ssrf.Resolver, now: datetime
) -> service.Outcome:
    started = time.perf_counter()
    try:
        destination = ssrf.check_url(
            delivery.url, allow_http_loopback=settings.webhooks_allow_loopback, resolver=resolver
        )
    except ssrf.UnsafeDestination as refusal:
        elapsed = (time.perf_counter() - started) * 1000
        return service.Outcome(status=None, duration_ms=elapsed, error=f"refused: {refusal}")
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
        elapsed = (time.perf_counter() - started) * 1000
        return service.Outcome(status=None, duration_ms=elapsed, error=str(error))
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
    longest = timedelta(days=1)
    if value.strip().isdigit():
        return min(timedelta(seconds=min(int(value), 86_400)), longest)
    try:
        wait = parsedate_to_datetime(value) - now
    except (TypeError, ValueError, OverflowError):
        return None
    return min(max(wait, timedelta(0)), longest)
