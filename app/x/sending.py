"""The reply job: claim a due reply, post it with `create_tweet` (no transaction open while X
answers), record what X said.

What is retried: a rate limit (at its reset, not counted as an attempt), X's server errors,
network failures and refused credentials (with backoff, up to `x_reply_max_attempts` attempts).
What fails at once: other refusals (403, duplicate content included), a bad request (400, a
deleted post), a 404. A retry that X refuses as duplicate content is checked against the
account's recent posts: if an earlier attempt went out, the reply is recorded sent.
"""

import html
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
REPLIES_PER_PASS = 10
RECENT_POSTS = 20  # where an earlier attempt of a reply is looked for


def run(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    writer: Callable[[Settings], tweepy.Client] = x_client.writer,
    clock: Clock = utcnow,
) -> int:
    """One pass, one reply claimed at a time (a lease covers a single call to X); returns how
    many replies were attempted. Credentials X refuses stop the pass: the other replies wait."""
    lease = timedelta(seconds=settings.x_lease_seconds)
    x: tweepy.Client | None = None
    attempted = 0
    for _ in range(REPLIES_PER_PASS):
        with sessions() as session, session.begin():
            claimed = replies.claim(
                session=session,
                now=clock(),
                lease=lease,
                limit=1,
                max_attempts=settings.x_reply_max_attempts,
            )
        if not claimed:
            break
        reply = claimed[0]
        x = x or writer(settings)
        outcome = send(x, reply, now=clock(), max_attempts=settings.x_reply_max_attempts)
        with sessions() as session, session.begin():
            replies.record(session=session, claimed=reply, outcome=outcome, now=clock())
        attempted += 1
        if outcome.post_id:
            log.info("reply %d sent as post %s", reply.reply_id, outcome.post_id)
        else:
            log.warning("reply %d not sent: %s", reply.reply_id, outcome.error)
        if outcome.stop_pass:
            break
    return attempted


def send(
    x: tweepy.Client, reply: replies.Claimed, *, now: datetime, max_attempts: int
) -> replies.Outcome:
    """Post the reply; what X answered, as an outcome to record."""
    try:
        answer = x.create_tweet(
            text=reply.text, in_reply_to_tweet_id=reply.in_reply_to_id, user_auth=True
        )
    except tweepy.TooManyRequests as error:
        reset = error.reset_time
        at = datetime.fromtimestamp(int(reset) + 1, tz=UTC) if reset else now + FIRST_BACKOFF
        return replies.Outcome(
            error=x_client.describe(error), retry_at=at, counts=False, stop_pass=True
        )
    except (tweepy.TwitterServerError, tweepy.Unauthorized, requests.RequestException) as error:
        # X's trouble, a network failure, or credentials being rotated: worth another try.
        return _retry(error, reply, now=now, max_attempts=max_attempts)
    except tweepy.Forbidden as error:
        earlier = _earlier_post(x, reply) if _duplicate(error) and reply.attempt > 1 else None
        if earlier is not None:  # an earlier attempt went out, but its answer was lost
            return replies.Outcome(post_id=earlier)
        return replies.Outcome(error=x_client.describe(error))
    except tweepy.TweepyException as error:  # 400 (a deleted post...), 404
        return replies.Outcome(error=x_client.describe(error))
    post_id = (answer.get("data") or {}).get("id") if isinstance(answer, dict) else None
    if not post_id:
        return replies.Outcome(error="X accepted the reply but gave no post id")
    return replies.Outcome(post_id=str(post_id))


def _retry(
    error: Exception, reply: replies.Claimed, *, now: datetime, max_attempts: int
) -> replies.Outcome:
    stop = isinstance(error, tweepy.Unauthorized)
    if reply.attempt >= max_attempts:
        last = f"{x_client.describe(error)} (attempt {reply.attempt}, the last)"
        return replies.Outcome(error=last, stop_pass=stop)
    backoff = min(FIRST_BACKOFF * 2 ** (reply.attempt - 1), MAX_BACKOFF)
    return replies.Outcome(error=x_client.describe(error), retry_at=now + backoff, stop_pass=stop)


def _duplicate(error: tweepy.Forbidden) -> bool:
    return any("duplicate" in str(message).lower() for message in error.api_messages)


def _earlier_post(x: tweepy.Client, reply: replies.Claimed) -> str | None:
    """The answering account's recent post that replies to the same post with the same text:
    an earlier attempt X took while its answer was lost (a timeout, a worker that died)."""
    try:
        me = x.get_me(user_auth=True)["data"]["id"]
        recent = x.get_users_tweets(
            me, max_results=RECENT_POSTS, tweet_fields=["referenced_tweets"], user_auth=True
        )
    except (tweepy.TweepyException, requests.RequestException, KeyError, TypeError):
        return None
    for post in recent.get("data") or []:
        references = post.get("referenced_tweets") or []
        answers = {"type": "replied_to", "id": reply.in_reply_to_id} in references
        if answers and html.unescape(post.get("text", "")) == reply.text:
            return str(post["id"])
    return None
