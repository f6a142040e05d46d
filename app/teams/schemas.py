"""API shapes of teams."""

from pydantic import BaseModel, ConfigDict, Field

TeamSlug = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")


class TeamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = TeamSlug
    name: str = Field(min_length=1, max_length=200)


class TeamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
