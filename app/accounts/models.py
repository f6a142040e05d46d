"""Watched accounts: the company's own accounts and its executives' personal ones."""

import enum
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, text_enum, utcnow


class AccountKind(enum.StrEnum):
    COMPANY = "company"
    EXECUTIVE = "executive"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[AccountKind] = mapped_column(text_enum(AccountKind))
    display_name: Mapped[str] = mapped_column(String(200))
    x_user_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    # Words that name the account without tagging it (the brand, the CEO's name): X's recent
    # search looks for them. Empty: no search.
    search_terms: Mapped[list[str]] = mapped_column(default=list)
    # How often X is polled for this account; None: the `x_poll_interval_seconds` setting.
    poll_interval_seconds: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
