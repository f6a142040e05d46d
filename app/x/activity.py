"""X's Account Activity webhook: the CRC challenge, the signature over the raw body, and
`tweet_create_events` turned into mentions.

X signs with the app's consumer secret: `sha256=` + base64(HMAC-SHA256(secret, message)), where
the message is the `crc_token` for the challenge and the raw body for events. The events carry
no timestamp in their signature, so a replayed event is stopped by ingest's idempotency: a post
is one mention whatever channel brings it, however often.
"""

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from app.errors import InvalidInput, Unauthenticated
from app.ingest.schemas import MentionIn

SOURCE = "x"  # every X channel (webhook, poller, stream) uses it: one post, one mention
X_TIME = "%a %b %d %H:%M:%S %z %Y"  # "Wed Oct 10 20:19:24 +0000 2018"


class BadSignature(Unauthenticated):
    code = "invalid_signature"


def signature(secret: str, message: bytes) -> str:
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def crc_response(secret: str, crc_token: str) -> dict[str, str]:
    """The answer to X's challenge, proving we hold the consumer secret."""
    return {"response_token": signature(secret, crc_token.encode())}


def check_signature(secret: str, body: bytes, header: str | None) -> None:
    """Refuse a body whose `x-twitter-webhooks-signature` is missing or wrong (constant time)."""
    if not header or not hmac.compare_digest(header.encode(), signature(secret, body).encode()):
        raise BadSignature("the x-twitter-webhooks-signature header does not match the body")


def mentions_in(event: dict[str, Any], handle_of: dict[str, str]) -> list[MentionIn]:
    """The posts of `tweet_create_events` addressed to a watched account, as mentions; the
    watched account's own posts are left out. `handle_of` maps X user ids to watched handles."""
    account = handle_of.get(str(event.get("for_user_id", "")))
    if account is None:
        return []
    posts = event.get("tweet_create_events") or []
    if not isinstance(posts, list):
        raise InvalidInput("tweet_create_events must be a list")
    own_id = str(event["for_user_id"])
    return [_mention(post, account) for post in posts if _author_id(post) != own_id]


def _author_id(post: Any) -> str:
    user = post.get("user") if isinstance(post, dict) else None
    return str(user.get("id_str", "")) if isinstance(user, dict) else ""


def _mention(post: dict[str, Any], account: str) -> MentionIn:
    user = post.get("user") or {}
    extended = post.get("extended_tweet") or {}
    try:
        return MentionIn.model_validate(
            {
                "source": SOURCE,
                "external_id": post["id_str"],
                "account": account,
                "author": {
                    "handle": user["screen_name"],
                    "id": user.get("id_str"),
                    "name": user.get("name"),
                    "followers": user.get("followers_count"),
                    "verified": user.get("verified"),
                },
                "text": extended.get("full_text") or post.get("full_text") or post["text"],
                "lang": post.get("lang") if post.get("lang") not in (None, "und") else None,
                "created_at": _posted_at(post.get("created_at")),
                "in_reply_to_id": post.get("in_reply_to_status_id_str"),
                "raw": post,
            }
        )
    except (KeyError, TypeError) as error:
        raise InvalidInput(f"a tweet_create_event lacks {error}") from error
    except ValidationError as error:
        problems = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]
        raise InvalidInput("a tweet_create_event is not a valid post", details=problems) from error


def _posted_at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, X_TIME)
    except ValueError:
        return None
