"""Standard Webhooks signatures (https://www.standardwebhooks.com/): secrets, signing, verifying."""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from secrets import token_bytes

from app.errors import AppError

SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret
SIGNATURE_VERSION = "v1"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
DEFAULT_TOLERANCE = 300
NEW_SECRET_BYTES = 32
# The spec asks for at least 192 bits and at most 512.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class InvalidSignature(AppError):
    """An inbound webhook whose headers or signature do not prove it came from a secret holder."""

    status_code = 401
    code = "invalid_signature"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(NEW_SECRET_BYTES)).decode("ascii")


def _strict_b64decode(text: str) -> bytes:
    """Decode standard base64, tolerating missing padding, refusing any other character."""
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded, validate=True)


def parse_secret(secret: str) -> bytes:
    """The HMAC key inside a `whsec_` secret; ValueError if the secret is malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"signing secret must start with {SECRET_PREFIX!r}")
    try:
        key = _strict_b64decode(secret.removeprefix(SECRET_PREFIX))
    except (binascii.Error, ValueError) as error:
        raise ValueError("signing secret is not valid base64") from error
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"signing secret must decode to {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes,"
            f" not {len(key)}"
        )
    return key


def _digest(*, key: bytes, message_id: str, timestamp: int, body: bytes) -> bytes:
    signed_content = f"{message_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed_content, hashlib.sha256).digest()


def _check_message_id(message_id: str) -> None:
    # A '.' would let the id/timestamp boundary shift inside the signed content.
    if not message_id or "." in message_id:
        raise ValueError("message id must be non-empty and contain no '.'")


def sign(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of the message with one secret."""
    _check_message_id(message_id)
    digest = _digest(
        key=parse_secret(secret), message_id=message_id, timestamp=timestamp, body=body
    )
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(
    *, secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> str:
    """The `webhook-signature` value: one signature per secret, several during a rotation."""
    if not secrets:
        raise ValueError("at least one signing secret is required")
    return " ".join(
        sign(secret=secret, message_id=message_id, timestamp=timestamp, body=body)
        for secret in secrets
    )


def headers(
    *, secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers to send with the body."""
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(
            secrets=secrets, message_id=message_id, timestamp=timestamp, body=body
        ),
    }


def _lower_case_headers(received: Mapping[str, str]) -> dict[str, str]:
    """Header names folded to lower case; a name given twice with different values is refused."""
    folded: dict[str, str] = {}
    for name, value in received.items():
        key = name.lower()
        if folded.get(key, value) != value:
            raise InvalidSignature(f"conflicting values for header {key}")
        folded[key] = value
    return folded


def _required_header(received: Mapping[str, str], name: str) -> str:
    value = received.get(name, "").strip()
    if not value:
        raise InvalidSignature(f"missing header {name}")
    return value


def _checked_timestamp(value: str, *, now: int, tolerance: int) -> int:
    # str.isdigit alone accepts non-ASCII digits, and int() accepts signs, spaces and underscores.
    if not (value.isascii() and value.isdigit()):
        raise InvalidSignature(f"{TIMESTAMP_HEADER} is not an integer number of seconds")
    timestamp = int(value)
    if timestamp < now - tolerance:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} is more than {tolerance} seconds old")
    if timestamp > now + tolerance:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} is more than {tolerance} seconds ahead")
    return timestamp


def _v1_candidates(value: str) -> list[bytes]:
    """Decoded v1 signatures of the header; other versions and malformed entries are skipped."""
    candidates = []
    for entry in value.split():
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            candidates.append(_strict_b64decode(encoded))
        except (binascii.Error, ValueError):
            continue
    return candidates


def _any_match(*, expected: Sequence[bytes], candidates: Sequence[bytes]) -> bool:
    # Compare every pair without stopping at the first match, so timing says nothing about which.
    matched = False
    for digest in expected:
        for candidate in candidates:
            matched |= hmac.compare_digest(digest, candidate)
    return matched


def verify(
    *,
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> str:
    """The message id of an authentic webhook; InvalidSignature(reason) otherwise."""
    if not secrets:
        raise ValueError("at least one signing secret is required")
    keys = [parse_secret(secret) for secret in secrets]
    received = _lower_case_headers(headers)
    message_id = _required_header(received, ID_HEADER)
    timestamp_value = _required_header(received, TIMESTAMP_HEADER)
    signatures = _required_header(received, SIGNATURE_HEADER)
    if "." in message_id:
        raise InvalidSignature(f"{ID_HEADER} must not contain '.'")
    timestamp = _checked_timestamp(timestamp_value, now=now, tolerance=tolerance)
    expected = [
        _digest(key=key, message_id=message_id, timestamp=timestamp, body=body) for key in keys
    ]
    if not _any_match(expected=expected, candidates=_v1_candidates(signatures)):
        raise InvalidSignature(f"no {SIGNATURE_VERSION} signature matches a known secret")
    return message_id
