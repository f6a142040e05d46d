"""Classifications: what the model said about a mention, with its version."""

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, partial_unique_index, utcnow


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


class ModelVersion(Base):
    """A trained model the service can run; exactly one is active once the service has started."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # At most one active version, whatever the processes activating at once.
        partial_unique_index("uq_model_versions_one_active", "active", where="active"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    # A directory with model.skops and metadata.json; "builtin" is the model shipped in the package.
    path: Mapped[str] = mapped_column(String(1000))
    details: Mapped[dict[str, Any]]  # the artifact's metadata.json
    metrics: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]


class ModelActivation(Base):
    """The audit trail of which model served, from when, on whose word."""

    __tablename__ = "model_activations"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    previous_version: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class LabelCorrection(Base):
    """An agent's word on what a mention really is: training data for the next model."""

    __tablename__ = "label_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        ForeignKey("mentions.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(32))
    previous_label: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
