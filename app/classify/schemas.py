"""API shapes of classifications, model versions and label corrections."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.fields import Actor, Text


class ClassificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    label: str
    probability: float
    probabilities: dict[str, float]
    model_version: str
    triage: bool


class ModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: str
    path: str
    active: bool
    metrics: dict[str, Any]
    details: dict[str, Any]
    created_at: datetime
    activated_at: datetime | None


class ModelsRead(BaseModel):
    """The registered versions, and the one this process is running."""

    serving: str
    versions: list[ModelRead]


class ActivationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: str
    previous_version: str | None
    actor: str
    at: datetime


class CorrectionIn(BaseModel):
    """The right label of a mention, by an agent (default: the key's name)."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=32)
    agent: Actor | None = None
    note: Text | None = Field(default=None, min_length=1, max_length=2_000)


class CorrectionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    mention_id: int
    label: str
    previous_label: str
    actor: str
    note: str | None
    at: datetime
