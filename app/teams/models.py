"""Teams: who works a queue of tickets, when, and how fast they must answer."""

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Agent identifiers; empty means anyone with the team's key may take its tickets.
    members: Mapped[list[str]] = mapped_column(default=list)
    # A BusinessHoursSpec; None: the team counts in calendar time, always open.
    hours: Mapped[dict[str, Any] | None]
    # An SlaPolicy: deadlines per priority and what happens on a breach.
    sla: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
