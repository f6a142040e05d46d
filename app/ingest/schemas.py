"""MentionIn, the one normalised shape every channel produces, and what ingest answers."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.accounts.schemas import Handle
from app.classify.schemas import ClassificationRead
from app.routing.schemas import RoutingRead

MAX_TEXT_CHARS = 25_000


class AuthorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: str = Field(min_length=1, max_length=65)
    id: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    followers: int | None = Field(default=None, ge=0)
    verified: bool | None = None

    @field_validator("handle")
    @classmethod
    def _strip_at(cls, handle: str) -> str:
        return handle.strip().removeprefix("@")


class MentionIn(BaseModel):
    """A post that mentions a watched account, from any channel."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_.:-]*$", examples=["api"]
    )
    external_id: str = Field(min_length=1, max_length=128, examples=["1"])
    account: Handle
    author: AuthorIn
    text: str = Field(max_length=MAX_TEXT_CHARS)
    lang: str | None = Field(default=None, min_length=2, max_length=16)
    created_at: datetime | None = None
    conversation_id: str | None = Field(default=None, min_length=1, max_length=128)
    in_reply_to_id: str | None = Field(default=None, min_length=1, max_length=128)
    raw: dict[str, Any] | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty")
        return text

    @field_validator("lang")
    @classmethod
    def _lower(cls, lang: str | None) -> str | None:
        return lang.lower() if lang else None

    @field_validator("created_at")
    @classmethod
    def _aware(cls, created_at: datetime | None) -> datetime | None:
        if created_at is not None and created_at.tzinfo is None:
            return created_at.replace(tzinfo=UTC)
        return created_at


class MentionBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mentions: list[MentionIn] = Field(min_length=1)


class AuthorRead(BaseModel):
    handle: str
    id: str | None
    name: str | None
    followers: int | None
    verified: bool | None


class MentionRead(BaseModel):
    """A stored mention with what was decided about it."""

    id: int
    source: str
    external_id: str
    account: str
    author: AuthorRead
    text: str
    lang: str | None
    created_at: datetime
    received_at: datetime
    conversation_id: str | None
    in_reply_to_id: str | None
    classification: ClassificationRead
    routing: RoutingRead


class BatchItemRead(BaseModel):
    index: int
    status: Literal["created", "duplicate"]
    mention: MentionRead


class BatchRead(BaseModel):
    created: int
    duplicates: int
    items: list[BatchItemRead]
