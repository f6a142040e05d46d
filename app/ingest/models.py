"""Mentions: one row per post, whatever channel brought it and however often."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Mention(Base):
    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index(None, "conversation_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    author_handle: Mapped[str] = mapped_column(String(64))
    author_external_id: Mapped[str | None] = mapped_column(String(64))
    author_name: Mapped[str | None] = mapped_column(String(200))
    author_followers: Mapped[int | None] = mapped_column(BigInteger)
    author_verified: Mapped[bool | None]
    text: Mapped[str] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(16))
    posted_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    in_reply_to_id: Mapped[str | None] = mapped_column(String(128))
    # The post that started the conversation (X's conversation_id), else the post itself.
    conversation_root: Mapped[str] = mapped_column(String(128))
    # One customer's thread: source, root and author. On X a conversation is a whole reply tree,
    # where many riders may answer one notice; each of them is a separate request.
    conversation_key: Mapped[str] = mapped_column(String(240))
    raw: Mapped[dict[str, Any] | None]
