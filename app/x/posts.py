"""X API v2 posts (a page of `data` with its `includes`) as mentions of a watched account."""

import logging
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from app.ingest.schemas import MentionIn
from app.x.activity import SOURCE

log = logging.getLogger(__name__)
NO_LANGUAGE = {"und", "zxx", "qme", "qht", "qam", "qct"}  # X's codes for "no linguistic content"
UNKNOWN_AUTHOR = "unknown"


def mentions_in(page: dict[str, Any], *, account: str, own_user_id: str | None) -> list[MentionIn]:
    """The page's posts addressed to `account`, leaving out the account's own posts and
    retweets. A post X answers without its author (no `author_id` expansion) keeps the author's
    id as handle, or `unknown`; a post that is not valid is logged and skipped, not fatal."""
    users = {u["id"]: u for u in (page.get("includes") or {}).get("users", []) if "id" in u}
    mentions = []
    for post in page.get("data") or []:
        if (own_user_id and post.get("author_id") == own_user_id) or _is_retweet(post):
            continue
        try:
            mentions.append(_mention(post, users.get(post.get("author_id", "")), account))
        except (KeyError, TypeError, ValidationError) as error:
            log.warning("skipping X post %s: %s", post.get("id"), type(error).__name__)
    return mentions


def newest_id(page: dict[str, Any]) -> str | None:
    return (page.get("meta") or {}).get("newest_id")


def next_token(page: dict[str, Any]) -> str | None:
    return (page.get("meta") or {}).get("next_token")


def _is_retweet(post: dict[str, Any]) -> bool:
    return any(r.get("type") == "retweeted" for r in post.get("referenced_tweets") or [])


def _mention(post: dict[str, Any], user: dict[str, Any] | None, account: str) -> MentionIn:
    author_id = post.get("author_id")
    return MentionIn.model_validate(
        {
            "source": SOURCE,
            "external_id": post["id"],
            "account": account,
            "author": _author(user, author_id),
            "text": post["text"],
            "lang": None if post.get("lang") in NO_LANGUAGE else post.get("lang"),
            "created_at": _time(post.get("created_at")),
            "conversation_id": post.get("conversation_id"),
            "in_reply_to_id": _replied_to(post),
            "raw": {"post": post, **({"author": user} if user else {})},
        }
    )


def _author(user: dict[str, Any] | None, author_id: str | None) -> dict[str, Any]:
    if user is None:
        return {"handle": author_id or UNKNOWN_AUTHOR, "id": author_id}
    metrics = user.get("public_metrics") or {}
    return {
        "handle": user["username"],
        "id": user["id"],
        "name": user.get("name"),
        "followers": metrics.get("followers_count"),
        "verified": user.get("verified"),
    }


def _replied_to(post: dict[str, Any]) -> str | None:
    for reference in post.get("referenced_tweets") or []:
        if reference.get("type") == "replied_to":
            return str(reference["id"])
    return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
