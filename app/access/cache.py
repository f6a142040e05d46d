"""Keys verified a moment ago, so that a burst of requests costs one database read per key.

Checking a key reads its row (revoked or not) and compares digests: about a third of a
millisecond, plus a hop to the thread pool, on every request, which was a fifth of the CPU time
of `POST /v1/mentions`. A key found valid is remembered for `key_cache_seconds`; a revocation
therefore holds within that delay in every process (at once with 0). Unknown, wrong or revoked
keys are never remembered: each such request reads the database, and the cache cannot be
filled by guessing.

When a key's entry expires under load, every request in flight would find it missing at once
and each read the database (64 reads through the thread pool at once, every few seconds: the
slowest answers of a load test). Requests with the same token that arrive while its check runs
wait for that one check instead.
"""

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.access.service import Principal

MAX_KEYS = 10_000


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    expires_at: float


class KeyCache:
    """Principals by the digest of their token (the token itself is not kept), each for `ttl`
    seconds from its check."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[bytes, _Entry] = {}
        self._checks: dict[bytes, asyncio.Future[Principal | None]] = {}

    def get(self, token: str) -> Principal | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(_digest(token))
        if entry is None or entry.expires_at <= self._clock():
            return None
        return entry.principal

    async def check(
        self, token: str, verify: Callable[[], Awaitable[Principal | None]]
    ) -> Principal | None:
        """The principal behind the token: remembered, or verified (once for all the requests
        that ask meanwhile) and remembered if valid. With a delay of 0, each request verifies."""
        remembered = self.get(token)
        if remembered is not None or self.ttl <= 0:
            return remembered or await verify()
        digest = _digest(token)
        running = self._checks.get(digest)
        if running is None:
            running = asyncio.ensure_future(self._verify(token, verify))
            self._checks[digest] = running
            running.add_done_callback(lambda _: self._checks.pop(digest, None))
        # Shielded: a request that goes away must not cancel the check the others wait for.
        return await asyncio.shield(running)

    async def _verify(
        self, token: str, verify: Callable[[], Awaitable[Principal | None]]
    ) -> Principal | None:
        # The delay counts from the read: a key revoked while it ran is forgotten `ttl` after.
        started = self._clock()
        principal = await verify()
        if principal is not None:
            self.put(token, principal, read_at=started)
        return principal

    def put(self, token: str, principal: Principal, *, read_at: float | None = None) -> None:
        if self.ttl <= 0:
            return
        now = self._clock()
        if len(self._entries) >= MAX_KEYS:
            self._entries = {d: e for d, e in self._entries.items() if e.expires_at > now}
            if len(self._entries) >= MAX_KEYS:
                self._entries.clear()
        self._entries[_digest(token)] = _Entry(
            principal, (now if read_at is None else read_at) + self.ttl
        )


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
