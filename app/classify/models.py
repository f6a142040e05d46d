"""Classifications: what the model said about a mention, with its version."""

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Classification(Base):
    __tablename__ = "classifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        ForeignKey("mentions.id", ondelete="CASCADE"), unique=True
    )
    label: Mapped[str] = mapped_column(String(32), index=True)
    probability: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[dict[str, Any]]
    model_version: Mapped[str] = mapped_column(String(64))
    triage: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
