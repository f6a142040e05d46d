"""X's pollers' checkpoints, and replies queued for X."""

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, text_enum, utcnow


class Channel(enum.StrEnum):
    MENTIONS = "mentions"  # GET /2/users/:id/mentions
    SEARCH = "search"  # GET /2/tweets/search/recent, for the account's search terms


class Checkpoint(Base):
    """Where one poller of one account stands.

    A sweep reads the posts newer than `since_id`, newest first, a page at a time. Each page is
    ingested in the transaction that stores the next page's token, so a crash between pages
    resumes at the next page; `since_id` moves to the sweep's newest post only when the last
    page is in. Nothing is lost, and a page read twice is absorbed by ingest's idempotency.
    """

    __tablename__ = "x_checkpoints"
    __table_args__ = (UniqueConstraint("account_id", "channel"), Index(None, "next_poll_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    channel: Mapped[Channel] = mapped_column(text_enum(Channel))
    since_id: Mapped[str | None] = mapped_column(String(32))
    # The first sweep of a new checkpoint starts here instead (X's `start_time`).
    start_time: Mapped[datetime | None]
    # A sweep in progress: the next page's token, and the newest post of its first page.
    pagination_token: Mapped[str | None] = mapped_column(String(200))
    sweep_newest_id: Mapped[str | None] = mapped_column(String(32))
    next_poll_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A worker polling it holds a lease; an expired lease (a dead worker) frees it.
    lease_expires_at: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    polled_at: Mapped[datetime | None]
    posts_seen: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReplyState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Reply(Base):
    """An agent's answer to a ticket's post, sent on X by the worker."""

    __tablename__ = "x_replies"
    __table_args__ = (Index(None, "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    # The mention answered, and its post id on X.
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id"))
    in_reply_to_id: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    state: Mapped[ReplyState] = mapped_column(text_enum(ReplyState), default=ReplyState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    # Attempts whose worker stopped before recording an outcome (its lease ran out).
    crashes: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    x_post_id: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(String(500))
    author: Mapped[str] = mapped_column(String(200))
    via: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
