"""The configuration file: watched accounts, teams and the routing table."""

from pydantic import BaseModel, ConfigDict, Field

from app.accounts.schemas import AccountCreate
from app.routing.schemas import TableSpec
from app.teams.schemas import TeamSpec


class ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[AccountCreate] = Field(default_factory=list)
    teams: list[TeamSpec] = Field(default_factory=list)
    routing: TableSpec | None = None
