"""API shapes of replies on X."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.fields import MAX_ROW_ID, Text, visible
from app.tickets.schemas import Acting
from app.x.models import ReplyState

# X counts a post's length in weighted characters (most scripts 1, CJK 2, a link 23); 280
# characters is the limit for the common case, and X refuses a longer post itself.
MAX_REPLY_CHARS = 280


class ReplyIn(Acting):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[Text, Field(min_length=1, max_length=MAX_REPLY_CHARS), AfterValidator(visible)]
    # The post answered: one of the ticket's mentions from X; by default the latest.
    mention_id: int | None = Field(default=None, ge=1, le=MAX_ROW_ID)


class ReplyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int
    mention_id: int
    in_reply_to_id: str
    text: str
    state: ReplyState
    attempts: int
    next_attempt_at: datetime
    x_post_id: str | None
    last_error: str | None
    author: str
    created_at: datetime
    sent_at: datetime | None
