"""API keys: create (the secret is shown once), verify, list, revoke; and what a key may do."""

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.models import ApiKey
from app.access.schemas import KeyCreate
from app.db import utcnow
from app.errors import NotFound

PREFIX = "aig_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and what its scopes allow."""

    key_id: str
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"key:{self.name}"

    @property
    def reference(self) -> str:
        """The key, as the audit trail names it: its name and public id."""
        return f"key:{self.name}:{self.key_id}"

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def allows(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes

    def may_work(self, team_slug: str) -> bool:
        """Read and work this team's queue and tickets."""
        return self.allows(f"queue:{team_slug}")

    @property
    def teams(self) -> frozenset[str] | None:
        """The teams whose queues this key works; None means every team (admin)."""
        if self.is_admin:
            return None
        return frozenset(s.removeprefix("queue:") for s in self.scopes if s.startswith("queue:"))


def _digest(secret: str) -> str:
    # The secret is 32 random bytes: a plain SHA-256 cannot be brute-forced, and a slow hash
    # would cost every request.
    return hashlib.sha256(secret.encode()).hexdigest()


def create(*, session: Session, key_in: KeyCreate) -> tuple[ApiKey, str]:
    """A new key and its full token, which is returned this once and never stored."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        key_id=key_id,
        secret_hash=_digest(secret),
        name=key_in.name,
        scopes=sorted(set(key_in.scopes)),
    )
    session.add(key)
    session.flush()
    return key, f"{PREFIX}{key_id}_{secret}"


def verify(*, session: Session, token: str) -> Principal | None:
    """The principal behind a token, or None for a malformed, unknown or revoked one."""
    key_id, _, secret = token.removeprefix(PREFIX).partition("_")
    if not token.startswith(PREFIX) or not key_id or not secret:
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).first()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash, _digest(secret)):
        return None
    return Principal(key_id=key.key_id, name=key.name, scopes=frozenset(key.scopes))


def list_keys(*, session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)).all()


def revoke(*, session: Session, key_id: str) -> ApiKey:
    """Revoke a key by its public id; revoking twice is harmless."""
    key = session.scalars(select(ApiKey).where(ApiKey.key_id == key_id)).first()
    if key is None:
        raise NotFound(f"no key {key_id!r}", details={"key_id": key_id})
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


def has_any(*, session: Session) -> bool:
    return session.scalars(select(ApiKey.id).limit(1)).first() is not None
