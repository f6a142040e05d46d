"""API shapes of keys and scopes."""

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCOPE_PATTERN = re.compile(r"ingest|admin|routing:write|queue:[a-z0-9][a-z0-9-]{0,63}")


def valid_scope(scope: str) -> str:
    if not SCOPE_PATTERN.fullmatch(scope):
        raise ValueError(
            f"unknown scope {scope!r}: use ingest, queue:<team>, routing:write or admin"
        )
    return scope


Scope = Annotated[str, AfterValidator(valid_scope)]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@+-]+$")
    scopes: list[Scope] = Field(min_length=1)


class KeyRead(BaseModel):
    """A key as listed: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    key_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
