"""tweepy clients made from the settings: the app's reader, the answering account's writer and
the filtered stream, each with a timeout and pointed at the configured API address."""

import logging
from collections.abc import Mapping
from typing import Any

import requests
import tweepy
from requests.adapters import HTTPAdapter

from app.config import Settings
from app.errors import NotConfigured

# tweepy logs each request's headers at DEBUG, the bearer token included, and oauthlib its
# signing material: those loggers never go below INFO, whatever the service's log level.
for _name in ("tweepy", "oauthlib", "requests_oauthlib"):
    logging.getLogger(_name).setLevel(logging.INFO)

TWEEPY_HOST = "https://api.twitter.com"  # hard-coded in tweepy; the adapter below replaces it

# What a post brings with it: its author (handle, name, verified, followers), its time,
# thread and language, and what it replies to or quotes.
TWEET_FIELDS = [
    "author_id",
    "conversation_id",
    "created_at",
    "in_reply_to_user_id",
    "lang",
    "referenced_tweets",
]
USER_FIELDS = ["name", "username", "verified", "public_metrics"]
EXPANSIONS = ["author_id", "referenced_tweets.id", "in_reply_to_user_id"]
FIELDS: dict[str, Any] = {
    "tweet_fields": TWEET_FIELDS,
    "user_fields": USER_FIELDS,
    "expansions": EXPANSIONS,
}


class _ApiAddress(HTTPAdapter):
    """Sends tweepy's requests to `base` instead of X's own host, with a timeout when tweepy
    sets none (its REST calls would otherwise wait forever on a silent server)."""

    def __init__(self, base: str, timeout: float) -> None:
        super().__init__()
        self._base = base.rstrip("/")
        self._timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if request.url and request.url.startswith(TWEEPY_HOST):
            request.url = self._base + request.url[len(TWEEPY_HOST) :]
        return super().send(
            request,
            stream=stream,
            timeout=self._timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


def _aim(session: requests.Session, settings: Settings) -> None:
    session.mount(TWEEPY_HOST, _ApiAddress(settings.x_api_url, settings.x_timeout_seconds))


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def reader(settings: Settings) -> tweepy.Client:
    """The app's client (bearer token): mentions timelines, recent search, user lookups."""
    if not settings.x_reads:
        raise NotConfigured("reading X needs AIGUILLEUR_X_BEARER_TOKEN")
    client = tweepy.Client(bearer_token=_secret(settings.x_bearer_token), return_type=dict)
    _aim(client.session, settings)
    return client


def writer(settings: Settings) -> tweepy.Client:
    """The answering account's client (OAuth 1.0a user context): replies."""
    if not settings.x_writes:
        raise NotConfigured(
            "replying on X needs AIGUILLEUR_X_CONSUMER_KEY, AIGUILLEUR_X_CONSUMER_SECRET, "
            "AIGUILLEUR_X_ACCESS_TOKEN and AIGUILLEUR_X_ACCESS_TOKEN_SECRET"
        )
    client = tweepy.Client(
        consumer_key=_secret(settings.x_consumer_key),
        consumer_secret=_secret(settings.x_consumer_secret),
        access_token=_secret(settings.x_access_token),
        access_token_secret=_secret(settings.x_access_token_secret),
        return_type=dict,
    )
    _aim(client.session, settings)
    return client


def aim_stream(stream: tweepy.StreamingClient, settings: Settings) -> None:
    """Point a filtered stream (and its rule calls) at the configured API address."""
    _aim(stream.session, settings)


def describe(error: Exception) -> str:
    """What went wrong, without what a response may echo back (never a credential)."""
    if isinstance(error, tweepy.HTTPException):
        messages = "; ".join(str(m) for m in error.api_messages)[:300]
        return f"X answered {error.response.status_code}" + (f": {messages}" if messages else "")
    return type(error).__name__
