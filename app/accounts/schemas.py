"""API shapes of watched accounts."""

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

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


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


# A word or phrase X's search looks for: printable, and nothing its query syntax would read
# (quotes, parentheses, backslashes).
SearchTerm = Annotated[
    str,
    BeforeValidator(_strip),
    Field(
        min_length=2,
        max_length=60,
        pattern=r'^[^"()\\\x00-\x1f\x7f]+$',
        examples=["TransNord", "Camille Durand"],
    ),
]
# X's recent search takes queries of up to 512 characters; the operators added take some.
MAX_SEARCH_CHARS = 400


def _search_fits(terms: list[str]) -> list[str]:
    if len(" OR ".join(f'"{t}"' for t in terms)) > MAX_SEARCH_CHARS:
        raise ValueError(f"the search terms make a query over {MAX_SEARCH_CHARS} characters")
    if any(t.startswith("-") or not t for t in terms):
        raise ValueError("a search term may not be empty or start with '-'")
    return terms


SearchTerms = Annotated[list[SearchTerm], Field(max_length=20), AfterValidator(_search_fits)]
PollInterval = Annotated[int, Field(ge=15, le=86_400)]


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: Handle
    kind: AccountKind
    display_name: Text = Field(min_length=1, max_length=200)
    x_user_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")
    # Words naming the account without a tag (the brand, the CEO's name), for X's recent search.
    search_terms: SearchTerms = Field(default_factory=list)
    poll_interval_seconds: PollInterval | None = None


class AccountUpdate(BaseModel):
    """A change to a watched account: only the fields given change (null clears)."""

    model_config = ConfigDict(extra="forbid")

    kind: AccountKind | None = None
    display_name: Text | None = Field(default=None, min_length=1, max_length=200)
    x_user_id: str | None = Field(default=None, pattern=r"^[0-9]{1,32}$")
    search_terms: SearchTerms | None = None
    poll_interval_seconds: PollInterval | None = None


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    handle: str
    kind: AccountKind
    display_name: str
    x_user_id: str | None
    search_terms: list[str]
    poll_interval_seconds: int | None
    created_at: datetime
