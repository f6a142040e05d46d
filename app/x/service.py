"""The pollers' checkpoints: created for each watched account, claimed under a lease, moved on
only together with the posts they cover."""

import secrets as random_tokens
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.accounts.models import Account
from app.accounts.schemas import normalise_handle
from app.classify.service import Classifier
from app.errors import UnknownAccount
from app.ingest import service as ingest
from app.ingest.schemas import MentionIn
from app.x.models import Channel, Checkpoint

# One page is at most this many posts (X's largest page for both endpoints).
PAGE_SIZE = 100


@dataclass(frozen=True)
class Claimed:
    """A checkpoint held by this worker, with what a sweep needs to read X."""

    checkpoint_id: int
    token: str
    channel: Channel
    account: str
    x_user_id: str | None
    query: str | None
    since_id: str | None
    start_time: datetime | None
    pagination_token: str | None
    sweep_newest_id: str | None
    interval: timedelta


def search_query(handle: str, terms: list[str]) -> str:
    """X's recent-search query for posts naming the account: any of its terms, not its own
    posts, no retweets. Each term is quoted: a phrase is searched as such, and a term can never
    be read as an operator (`from:`, `-`)."""
    quoted = " OR ".join(f'"{term}"' for term in terms)
    return f"({quoted}) -from:{handle} -is:retweet"


def ensure_checkpoints(*, session: Session, now: datetime, lookback: timedelta) -> int:
    """A checkpoint for each account with an X user id (mentions) and each with search terms
    (search); a new one first reads `lookback` into the past. Two workers may make the same
    one at once: the second insert is ignored. Returns how many were missing."""
    have = set(session.execute(select(Checkpoint.account_id, Checkpoint.channel)).tuples())
    missing = [
        {
            "account_id": account.id,
            "channel": channel,
            "start_time": now - lookback,
            "next_poll_at": now,
        }
        for account in session.scalars(select(Account).order_by(Account.id))
        for channel in _channels(account)
        if (account.id, channel) not in have
    ]
    if missing:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(Checkpoint).values(missing)
        session.execute(statement.on_conflict_do_nothing(index_elements=["account_id", "channel"]))
    return len(missing)


def _channels(account: Account) -> list[Channel]:
    return [Channel.MENTIONS] * bool(account.x_user_id) + [Channel.SEARCH] * bool(
        account.search_terms
    )


def claim(
    *, session: Session, now: datetime, lease: timedelta, default_interval: int, limit: int = 20
) -> list[Claimed]:
    """Due checkpoints, each held under a lease and a token of this claim (`SKIP LOCKED` on
    PostgreSQL, so workers take different accounts; SQLite's write lock on the embedded one)."""
    free = or_(Checkpoint.lease_expires_at.is_(None), Checkpoint.lease_expires_at <= now)
    query = (
        select(Checkpoint, Account)
        .join(Account, Account.id == Checkpoint.account_id)
        .where(Checkpoint.next_poll_at <= now, free)
        .order_by(Checkpoint.next_poll_at, Checkpoint.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Checkpoint)
    )
    claimed = []
    for checkpoint, account in session.execute(query).tuples():
        if checkpoint.channel not in _channels(account):  # the account no longer has it
            checkpoint.next_poll_at = now + timedelta(seconds=default_interval)
            continue
        checkpoint.claim_token = random_tokens.token_hex(16)
        checkpoint.lease_expires_at = now + lease
        claimed.append(_claimed(checkpoint, account, default_interval))
    return claimed


def _claimed(checkpoint: Checkpoint, account: Account, default_interval: int) -> Claimed:
    return Claimed(
        checkpoint_id=checkpoint.id,
        token=checkpoint.claim_token or "",
        channel=checkpoint.channel,
        account=account.handle,
        x_user_id=account.x_user_id,
        query=search_query(account.handle, account.search_terms)
        if checkpoint.channel is Channel.SEARCH
        else None,
        since_id=checkpoint.since_id,
        start_time=checkpoint.start_time,
        pagination_token=checkpoint.pagination_token,
        sweep_newest_id=checkpoint.sweep_newest_id,
        interval=timedelta(seconds=account.poll_interval_seconds or default_interval),
    )


def _held(session: Session, claimed: Claimed) -> Checkpoint | None:
    """The checkpoint, locked, if this claim still holds it."""
    checkpoint = session.scalars(
        select(Checkpoint)
        .where(
            and_(Checkpoint.id == claimed.checkpoint_id, Checkpoint.claim_token == claimed.token)
        )
        .with_for_update()
    ).first()
    return checkpoint


@dataclass(frozen=True)
class Page:
    mentions: list[MentionIn]
    posts: int
    next_token: str | None
    sweep_newest_id: str | None


def record_page(
    *,
    session: Session,
    claimed: Claimed,
    page: Page,
    classifier: Classifier,
    reopen_within: timedelta,
    now: datetime,
    lease: timedelta,
) -> bool:
    """Ingest a page's mentions and move the checkpoint past it, in one transaction: the next
    page's token, or at a sweep's end the sweep's newest post as `since_id`. False (and nothing
    written) if another worker took the checkpoint meanwhile."""
    checkpoint = _held(session, claimed)
    if checkpoint is None:
        return False
    if page.mentions:
        ingest.ingest(
            session=session,
            classifier=classifier,
            mentions=page.mentions,
            limit=PAGE_SIZE,
            reopen_within=reopen_within,
        )
    checkpoint.posts_seen += page.posts
    checkpoint.polled_at, checkpoint.last_error = now, None
    if page.next_token is not None:
        checkpoint.pagination_token = page.next_token
        checkpoint.sweep_newest_id = page.sweep_newest_id
        checkpoint.lease_expires_at = now + lease
        return True
    if page.sweep_newest_id is not None:
        checkpoint.since_id = page.sweep_newest_id
        checkpoint.start_time = None
    checkpoint.pagination_token = checkpoint.sweep_newest_id = None
    checkpoint.next_poll_at = now + claimed.interval
    checkpoint.lease_expires_at = checkpoint.claim_token = None
    return True


def record_pause(
    *,
    session: Session,
    claimed: Claimed,
    until: datetime,
    error: str,
    restart_sweep: bool = False,
) -> None:
    """Stop this sweep until `until` (a rate limit's reset, a failure's backoff), keeping its
    place unless the place itself was refused (an expired pagination token)."""
    checkpoint = _held(session, claimed)
    if checkpoint is None:
        return
    if restart_sweep:
        checkpoint.pagination_token = checkpoint.sweep_newest_id = None
    checkpoint.next_poll_at = until
    checkpoint.last_error = error[:500]
    checkpoint.lease_expires_at = checkpoint.claim_token = None


def checkpoints(*, session: Session) -> list[tuple[Checkpoint, str]]:
    """Every checkpoint with its account's handle, for `aiguilleur x status`."""
    rows = session.execute(
        select(Checkpoint, Account.handle)
        .join(Account, Account.id == Checkpoint.account_id)
        .order_by(Account.handle, Checkpoint.channel)
    ).tuples()
    return list(rows)


def backfill_plans(
    *, session: Session, since: datetime, handles: list[str] | None, interval: int
) -> list[Claimed]:
    """What a backfill reads: each account's channels from `since`, outside any checkpoint."""
    query = select(Account).order_by(Account.id)
    if handles:
        query = query.where(Account.handle.in_([normalise_handle(h) for h in handles]))
    accounts = list(session.scalars(query))
    if handles and len(accounts) < len(set(handles)):
        known = {a.handle for a in accounts}
        missing = sorted({normalise_handle(h) for h in handles} - known)
        raise UnknownAccount(f"not watched: {', '.join(missing)}", details={"accounts": missing})
    return [
        Claimed(
            checkpoint_id=0,
            token="",
            channel=channel,
            account=account.handle,
            x_user_id=account.x_user_id,
            query=search_query(account.handle, account.search_terms)
            if channel is Channel.SEARCH
            else None,
            since_id=None,
            start_time=since,
            pagination_token=None,
            sweep_newest_id=None,
            interval=timedelta(seconds=interval),
        )
        for account in accounts
        for channel in _channels(account)
    ]
