"""X's filtered stream as an intake, where the access tier allows it: one rule per watched
account (its @handle and its search terms, not its own posts, no retweets), each post ingested
as it arrives.

tweepy's `StreamingClient` reconnects by itself, with X's backoff (linear for network errors,
exponential for HTTP errors, at least a minute after a 429). A reconnection may bring posts again
(`backfill_minutes`): ingest's idempotency makes them duplicates, not new mentions.
"""

import json
import logging
import time
from typing import Any

import tweepy
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account
from app.config import Settings
from app.errors import AppError, NotConfigured
from app.ingest import service as ingest
from app.x import client as x_client
from app.x import posts
from app.x.polling import Models

log = logging.getLogger(__name__)
STORE_ATTEMPTS = 3
TAG = "aiguilleur:"  # the rules this service owns; others on the same app are left alone


def wanted_rules(accounts: list[Account]) -> dict[str, str]:
    """Rule value by tag, for each account X can find: by its @handle if it has an X user id,
    by its search terms if it has some."""
    rules = {}
    for account in accounts:
        names = [f"@{account.handle}"] * bool(account.x_user_id)
        names += [f'"{term}"' for term in account.search_terms]
        if names:
            rules[TAG + account.handle] = (
                f"({' OR '.join(names)}) -from:{account.handle} -is:retweet"
            )
    return rules


def sync_rules(stream: tweepy.StreamingClient, wanted: dict[str, str]) -> tuple[int, int]:
    """Make the stream's rules of this service the wanted ones; returns (added, deleted)."""
    current = stream.get_rules().data or []
    ours = [rule for rule in current if (rule.tag or "").startswith(TAG)]
    stale = [rule.id for rule in ours if wanted.get(rule.tag) != rule.value]
    kept = {(rule.tag, rule.value) for rule in ours if rule.id not in stale}
    missing = [
        tweepy.StreamRule(value=value, tag=tag)
        for tag, value in sorted(wanted.items())
        if (tag, value) not in kept
    ]
    if stale:
        stream.delete_rules(stale)
    if missing:
        stream.add_rules(missing)
    return len(missing), len(stale)


class MentionStream(tweepy.StreamingClient):  # type: ignore[misc]
    """Posts matching this service's rules become mentions of the rule's account."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: sessionmaker[Session],
        models: Models,
        **options: Any,
    ) -> None:
        if settings.x_bearer_token is None:
            raise NotConfigured("the filtered stream needs AIGUILLEUR_X_BEARER_TOKEN")
        super().__init__(settings.x_bearer_token.get_secret_value(), **options)
        x_client.aim_stream(self, settings)
        self._settings, self._sessions, self._models = settings, sessions, models
        self.ingested = 0
        self.failed = False
        self._own_ids: dict[str, str | None] = {}

    def sync(self) -> tuple[int, int]:
        with self._sessions() as session:
            accounts = list(session.scalars(select(Account).order_by(Account.id)))
            self._own_ids = {a.handle: a.x_user_id for a in accounts}
        return sync_rules(self, wanted_rules(accounts))

    def on_data(self, raw_data: bytes) -> None:
        """A post with the rules it matched. A post that is not valid is logged and skipped; a
        database that stays unavailable stops the stream (the command exits 1, and a restart
        with `--backfill-minutes` brings back what was missed): the stream keeps no place."""
        try:
            message = json.loads(raw_data)
        except ValueError:
            log.error("stream: a message that is not JSON was skipped")
            return
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                self._ingest(message)
                return
            except AppError as error:
                log.error("stream: post skipped: %s", error.message)
                return
            except SQLAlchemyError as error:
                log.warning("stream: storing failed (%d): %s", attempt, type(error).__name__)
                time.sleep(attempt)
            except Exception:
                log.exception("stream: post skipped")
                return
        self.failed = True
        self.disconnect()

    def on_exception(self, exception: Exception) -> None:
        log.error("stream: stopped by %s", type(exception).__name__)
        self.failed = True

    def _ingest(self, message: dict[str, Any]) -> None:
        tags = [r.get("tag") or "" for r in message.get("matching_rules") or []]
        handles = [tag.removeprefix(TAG) for tag in tags if tag.startswith(TAG)]
        if "data" not in message or not handles:
            return
        account = handles[0]
        page = {"data": [message["data"]], "includes": message.get("includes") or {}}
        mentions = posts.mentions_in(page, account=account, own_user_id=self._own_ids.get(account))
        if not mentions:
            return
        with self._sessions() as session, session.begin():
            outcomes = ingest.ingest(
                session=session,
                classifier=self._models.classifier,
                mentions=mentions,
                limit=len(mentions),
                reopen_within=self._settings.reopen_window,
            )
        self.ingested += sum(o.created for o in outcomes)

    def on_connect(self) -> None:
        log.info("stream: connected")

    def on_closed(self, response: Any) -> None:
        log.warning("stream: closed by X, reconnecting")

    def on_request_error(self, status_code: int) -> None:
        log.error("stream: X answered %s, retrying with backoff", status_code)


def open_stream(
    *, settings: Settings, sessions: sessionmaker[Session], models: Models
) -> MentionStream:
    """A stream with its rules in sync with the watched accounts, ready to `filter()`."""
    stream = MentionStream(settings=settings, sessions=sessions, models=models)
    added, deleted = stream.sync()
    log.info("stream rules: %d added, %d deleted", added, deleted)
    return stream


def filter_options(backfill_minutes: int) -> dict[str, Any]:
    """What `filter()` asks for: the fields of a mention, and a backfill after a reconnection
    (X's higher tiers only)."""
    options: dict[str, Any] = dict(x_client.FIELDS)
    if backfill_minutes:
        options["backfill_minutes"] = backfill_minutes
    return options
