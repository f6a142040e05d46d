"""API shapes of watched accounts."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.accounts.models import AccountKind
from app.fields import Text


def normalise_handle(handle: str) -> str:
    """X handles are case-insensitive and often written with their '@'."""
    return handle.strip().removeprefix("@").lower()


Handle = Annotated[
    str,
    Field(
        min_length=1, max_length=65, pattern=r"^@?[A-Za-z0-9_]{1,64}$", examples=["TransNordRail"]
    ),
    AfterValidator(normalise_handle),
]


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: Handle
    kind: AccountKind
    display_name: Text = Field(min_length=1, max_length=200)
    x_user_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    handle: str
    kind: AccountKind
    display_name: str
    x_user_id: str | None
    created_at: datetime
