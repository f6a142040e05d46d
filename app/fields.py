"""Field types shared by the API shapes: what the database can store, checked at the door."""

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

MAX_BIGINT = 2**63 - 1
MAX_ROW_ID = 2**31 - 1
EARLIEST_POST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(days=1)


def no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL; refuse it everywhere rather than fail at insert."""
    if "\x00" in text:
        raise ValueError("NUL characters are not allowed")
    return text


def no_nul_inside(value: Any) -> Any:
    """The same check through a JSON document (keys and string values); numbers must be what
    every JSON reader and PostgreSQL's jsonb accept: finite, and integers within 64 bits."""
    if isinstance(value, str):
        no_nul(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, int) and not -(2**63) <= value < 2**64:
        raise ValueError("integers must fit in 64 bits")
    elif isinstance(value, dict):
        for key, item in value.items():
            no_nul(key)
            no_nul_inside(item)
    elif isinstance(value, list):
        for item in value:
            no_nul_inside(item)
    return value


def visible(text: str) -> str:
    """At least one visible character: blank or zero-width-only text says nothing."""
    if not any(char.isprintable() and not char.isspace() for char in text):
        raise ValueError("text is empty")
    return text


def as_utc(moment: datetime) -> datetime:
    """The moment in UTC; a naive time is taken as UTC."""
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("the date is out of range") from error


def plausible_post_time(moment: datetime | None) -> datetime | None:
    """In UTC, between 2000 and tomorrow (a day of clock skew); naive times are taken as UTC."""
    if moment is None:
        return None
    moment = as_utc(moment)
    if not EARLIEST_POST <= moment <= datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("the date must be between 2000-01-01 and tomorrow")
    return moment


Text = Annotated[str, AfterValidator(no_nul)]
Identifier = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^\S(.*\S)?$"), AfterValidator(no_nul)
]
Count = Annotated[int, Field(ge=0, le=MAX_BIGINT)]
LATEST_MOMENT = datetime(2100, 1, 1, tzinfo=UTC)


def plausible_moment(moment: datetime) -> datetime:
    """In UTC, between 2000 and 2100: a time the service can compute with."""
    moment = as_utc(moment)
    if not EARLIEST_POST <= moment < LATEST_MOMENT:
        raise ValueError("the time must be between 2000-01-01 and 2100-01-01")
    return moment


UTCMoment = Annotated[datetime, AfterValidator(plausible_moment)]
JSONDocument = Annotated[dict[str, Any], AfterValidator(no_nul_inside)]

# P1 is the most urgent; the names sort in urgency order ("P1" < "P2").
Priority = Literal["P1", "P2", "P3", "P4"]
PRIORITIES: tuple[Priority, ...] = ("P1", "P2", "P3", "P4")
# Who did something: an agent's identifier, or "key:<name>" for a system acting with an API key.
Actor = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@:+-]+$", examples=["alice"])
]
