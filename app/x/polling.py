"""The X pollers: each due account's mentions timeline and recent search, read page by page with
no transaction open while X answers, each page ingested with its checkpoint.

A rate limit (429, `TooManyRequests` with the reset time of the `x-rate-limit-reset` header)
pauses the account's poller until the reset; it then resumes at the page it was refused. Other
failures back off for one poll interval and resume at the same place.
"""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import requests
import tweepy
from sqlalchemy.orm import Session, sessionmaker

from app.classify.service import Classifier
from app.config import Settings
from app.db import utcnow
from app.ingest import service as ingest
from app.x import client as x_client
from app.x import posts, service
from app.x.models import Channel

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
# X's recent search reaches seven days back; a start time just inside that is still accepted.
SEARCH_REACH = timedelta(days=7) - timedelta(minutes=5)
X_EPOCH_MS = 1_288_834_974_657
# A pass sweeps at most this many due checkpoints; the worker's other jobs run in between.
MAX_SWEEPS_PER_PASS = 20


class Models(Protocol):
    """Whatever holds the classifier this process serves (the app's state, the worker's)."""

    classifier: Classifier


def run(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    models: Models,
    reader: Callable[[Settings], tweepy.Client] = x_client.reader,
    clock: Clock = utcnow,
) -> int:
    """One pass over the due accounts, one claimed at a time (so that a lease covers only the
    sweep under way); returns how many pages were ingested."""
    lease = timedelta(seconds=settings.x_lease_seconds)
    with sessions() as session, session.begin():
        lookback = timedelta(minutes=settings.x_initial_lookback_minutes)
        service.ensure_checkpoints(session=session, now=clock(), lookback=lookback)
    x: tweepy.Client | None = None
    pages = 0
    for _ in range(MAX_SWEEPS_PER_PASS):
        with sessions() as session, session.begin():
            claimed = service.claim(
                session=session,
                now=clock(),
                lease=lease,
                default_interval=settings.x_poll_interval_seconds,
                limit=1,
            )
        if not claimed:
            break
        x = x or reader(settings)
        pages += sweep(
            claimed[0], x=x, sessions=sessions, settings=settings, models=models, clock=clock
        )
    return pages


def sweep(
    claimed: service.Claimed,
    *,
    x: tweepy.Client,
    sessions: sessionmaker[Session],
    settings: Settings,
    models: Models,
    clock: Clock,
) -> int:
    """Read one account's channel from its checkpoint to the newest post, a page at a time."""
    token, newest, pages = claimed.pagination_token, claimed.sweep_newest_id, 0
    while True:
        try:
            answer = fetch(x, claimed, token=token, now=clock())
        except tweepy.TooManyRequests as error:
            until = _reset_time(error) or clock() + claimed.interval
            _pause(sessions, claimed, until=until, error=f"rate limited until {until:%H:%M:%S}Z")
            log.warning("x %s @%s: rate limited until %s", claimed.channel, claimed.account, until)
            return pages
        except tweepy.BadRequest as error:
            # A page token X no longer knows: read the sweep again from its start (ingest
            # absorbs what was already read). Refused without a token: wait, an operator sees it.
            restart = token is not None
            until = clock() if restart else clock() + claimed.interval
            reason = x_client.describe(error)
            _pause(sessions, claimed, until=until, error=reason, restart_sweep=restart)
            log.warning("x %s @%s refused: %s", claimed.channel, claimed.account, reason)
            return pages
        except Exception as error:  # one account's failure never stops the others
            until = clock() + claimed.interval
            reason = x_client.describe(error)
            _pause(sessions, claimed, until=until, error=reason)
            expected = isinstance(error, tweepy.TweepyException | requests.RequestException)
            log.warning(
                "x %s @%s failed: %s",
                claimed.channel,
                claimed.account,
                reason,
                exc_info=not expected,
            )
            return pages
        newest = newest or posts.newest_id(answer)
        page = service.Page(
            mentions=posts.mentions_in(
                answer, account=claimed.account, own_user_id=claimed.x_user_id
            ),
            posts=len(answer.get("data") or []),
            next_token=posts.next_token(answer),
            sweep_newest_id=newest,
        )
        try:
            with sessions() as session, session.begin():
                kept = service.record_page(
                    session=session,
                    claimed=claimed,
                    page=page,
                    classifier=models.classifier,
                    reopen_within=settings.reopen_window,
                    now=clock(),
                    lease=timedelta(seconds=settings.x_lease_seconds),
                )
        except Exception as error:  # the page stays unread: the next attempt reads it again
            reason = f"storing a page failed: {type(error).__name__}"
            log.exception("x %s @%s: %s", claimed.channel, claimed.account, reason)
            _pause(sessions, claimed, until=clock() + claimed.interval, error=reason)
            return pages
        if not kept:  # another worker holds the checkpoint now: it goes on from there
            return pages
        pages += 1
        if page.next_token is None:
            return pages
        token = page.next_token


def fetch(
    x: tweepy.Client, claimed: service.Claimed, *, token: str | None, now: datetime
) -> dict[str, Any]:
    """One page of the channel, newest first, after `since_id` (or, for a new checkpoint,
    from its start time)."""
    since_id, start = claimed.since_id, claimed.start_time
    if claimed.channel is Channel.SEARCH:
        # Recent search refuses a `since_id` or `start_time` older than its seven days (after a
        # week without posts, or a worker down that long): what is older is out of reach anyway.
        reach = now - SEARCH_REACH
        if since_id is not None and posted_at(since_id) < reach:
            since_id, start = None, reach
        elif start is not None:
            start = max(start, reach)
    since: dict[str, Any] = {"since_id": since_id} if since_id else {}
    if not since and start is not None:
        since = {"start_time": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if claimed.channel is Channel.MENTIONS:
        answer = x.get_users_mentions(
            claimed.x_user_id,
            pagination_token=token,
            max_results=service.PAGE_SIZE,
            **since,
            **x_client.FIELDS,
        )
    else:
        answer = x.search_recent_tweets(
            claimed.query,
            next_token=token,
            max_results=service.PAGE_SIZE,
            **since,
            **x_client.FIELDS,
        )
    return answer if isinstance(answer, dict) else {}


def posted_at(post_id: str) -> datetime:
    """When a post was made, from its id (X's ids are "snowflakes": milliseconds since X's
    epoch in the high bits)."""
    return datetime.fromtimestamp(((int(post_id) >> 22) + X_EPOCH_MS) / 1000, tz=UTC)


def _pause(
    sessions: sessionmaker[Session],
    claimed: service.Claimed,
    *,
    until: datetime,
    error: str,
    restart_sweep: bool = False,
) -> None:
    with sessions() as session, session.begin():
        service.record_pause(
            session=session, claimed=claimed, until=until, error=error, restart_sweep=restart_sweep
        )


def _reset_time(error: tweepy.TooManyRequests) -> datetime | None:
    if error.reset_time is None:
        return None
    return datetime.fromtimestamp(int(error.reset_time) + 1, tz=UTC)


def backfill(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    models: Models,
    x: tweepy.Client,
    since: datetime,
    handles: list[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock = utcnow,
) -> dict[str, int]:
    """Import each account's posts since `since` once, waiting out rate limits; checkpoints are
    left as they are (what the pollers also read is a duplicate). Returns new mentions by
    account and channel. X's recent search reaches seven days back, the mentions timeline its
    800 latest posts."""
    with sessions() as session:
        plans = service.backfill_plans(
            session=session, since=since, handles=handles, interval=settings.x_poll_interval_seconds
        )
    created: dict[str, int] = {}
    for plan in plans:
        key = f"@{plan.account} {plan.channel}"
        created[key] = _read_all(
            plan, x=x, sessions=sessions, settings=settings, models=models, sleep=sleep, clock=clock
        )
    return created


def _read_all(
    plan: service.Claimed,
    *,
    x: tweepy.Client,
    sessions: sessionmaker[Session],
    settings: Settings,
    models: Models,
    sleep: Callable[[float], None],
    clock: Clock,
) -> int:
    token: str | None = None
    created = 0
    while True:
        try:
            answer = fetch(x, plan, token=token, now=clock())
        except tweepy.TooManyRequests as error:
            until = _reset_time(error) or clock() + plan.interval
            wait = max(0.0, (until - clock()).total_seconds())
            log.warning("backfill @%s: rate limited, waiting %.0f s", plan.account, wait)
            sleep(wait)
            continue
        mentions = posts.mentions_in(answer, account=plan.account, own_user_id=plan.x_user_id)
        if mentions:
            with sessions() as session, session.begin():
                outcomes = ingest.ingest(
                    session=session,
                    classifier=models.classifier,
                    mentions=mentions,
                    limit=service.PAGE_SIZE,
                    reopen_within=settings.reopen_window,
                )
            created += sum(o.created for o in outcomes)
        token = posts.next_token(answer)
        if token is None:
            return created
