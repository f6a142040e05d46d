"""MentionIn, the one normalised shape every channel produces, and what ingest answers."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.accounts.schemas import Handle
from app.classify.schemas import ClassificationRead
from app.fields import Count, Identifier, JSONDocument, Text, plausible_post_time, visible
from app.routing.schemas import RoutingRead

MAX_TEXT_CHARS = 25_000


class AuthorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: Text = Field(min_length=1, max_length=65)
    id: Identifier | None = Field(default=None, max_length=64)
    name: Text | None = Field(default=None, max_length=200)
    followers: Count | None = None
    verified: bool | None = None

    @field_validator("handle")
    @classmethod
    def _strip_at(cls, handle: str) -> str:
        handle = handle.strip().removeprefix("@")
        if not 1 <= len(handle) <= 64:
            raise ValueError("a handle has 1 to 64 characters after its '@'")
        return handle


class MentionIn(BaseModel):
    """A post that mentions a watched account, from any channel."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_.:-]*$", examples=["api"]
    )
    external_id: Identifier = Field(examples=["1"])
    account: Handle
    author: AuthorIn
    text: Annotated[Text, Field(max_length=MAX_TEXT_CHARS), AfterValidator(visible)]
    lang: str | None = Field(default=None, min_length=2, max_length=16, pattern=r"^[A-Za-z-]+$")
    created_at: Annotated[datetime | None, AfterValidator(plausible_post_time)] = None
    conversation_id: Identifier | None = None
    in_reply_to_id: Identifier | None = None
    raw: JSONDocument | None = None

    @field_validator("lang")
    @classmethod
    def _lower(cls, lang: str | None) -> str | None:
        return lang.lower() if lang else None


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
