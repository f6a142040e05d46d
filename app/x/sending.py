"""The reply job: claim due replies, post each with `create_tweet` (no transaction open while X
answers), record what X said.

What is retried: a rate limit (at its reset), X's server errors and network failures (with
backoff, up to `x_reply_max_attempts` attempts). What fails at once: duplicate content and other
refusals (403), a bad request (400, a deleted post), credentials X does not accept (401).
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import requests
import tweepy
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import utcnow
from app.x import client as x_client
from app.x import replies

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(minutes=30)


def run(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    writer: Callable[[Settings], tweepy.Client] = x_client.writer,
    clock: Clock = utcnow,
) -> int:
    """One pass; returns how many replies were attempted."""
    with sessions() as session, session.begin():
        lease = timedelta(seconds=settings.x_lease_seconds)
        claimed = replies.claim(session=session, now=clock(), lease=lease, limit=10)
    if not claimed:
        return 0
    x = writer(settings)
    for reply in claimed:
        outcome = send(x, reply, now=clock(), max_attempts=settings.x_reply_max_attempts)
        with sessions() as session, session.begin():
            replies.record(session=session, claimed=reply, outcome=outcome, now=clock())
        if outcome.post_id:
            log.info("reply %d sent as post %s", reply.reply_id, outcome.post_id)
        else:
            log.warning("reply %d not sent: %s", reply.reply_id, outcome.error)
    return len(claimed)


def send(
    x: tweepy.Client, reply: replies.Claimed, *, now: datetime, max_attempts: int
) -> replies.Outcome:
    try:
        answer = x.create_tweet(
            text=reply.text, in_reply_to_tweet_id=reply.in_reply_to_id, user_auth=True
        )
    except tweepy.TooManyRequests as error:
        reset = error.reset_time
        at = datetime.fromtimestamp(int(reset) + 1, tz=UTC) if reset else now + FIRST_BACKOFF
        return replies.Outcome(error=x_client.describe(error), retry_at=at)
    except (tweepy.TwitterServerError, requests.RequestException) as error:
        if reply.attempt >= max_attempts:
            return replies.Outcome(
                error=f"{x_client.describe(error)} (attempt {reply.attempt}, the last)"
            )
        backoff = min(FIRST_BACKOFF * 2 ** (reply.attempt - 1), MAX_BACKOFF)
        return replies.Outcome(error=x_client.describe(error), retry_at=now + backoff)
    except tweepy.TweepyException as error:  # 400, 401, 403 (duplicate content...), 404
        return replies.Outcome(error=x_client.describe(error))
    post_id = (answer.get("data") or {}).get("id") if isinstance(answer, dict) else None
    if not post_id:
        return replies.Outcome(error="X accepted the reply but gave no post id")
    return replies.Outcome(post_id=str(post_id))
