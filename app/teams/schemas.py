"""API shapes of teams: members, business hours and the SLA policy per priority."""

from datetime import datetime
from typing import Annotated, Self, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.fields import PRIORITIES, Actor, Priority
from app.teams.calendar import BusinessHoursSpec

Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]


class Target(BaseModel):
    """How fast a ticket of one priority must be answered and solved."""

    model_config = ConfigDict(extra="forbid")

    first_response_minutes: int = Field(gt=0, le=525_600)
    resolution_hours: float = Field(gt=0, le=8_760)


DEFAULT_TARGETS: dict[Priority, Target] = {
    "P1": Target(first_response_minutes=30, resolution_hours=4),
    "P2": Target(first_response_minutes=120, resolution_hours=24),
    "P3": Target(first_response_minutes=480, resolution_hours=72),
    "P4": Target(first_response_minutes=1_440, resolution_hours=168),
}


class Escalation(BaseModel):
    """What happens to a ticket when it breaches a deadline."""

    model_config = ConfigDict(extra="forbid")

    raise_priority: bool = True
    team: Slug | None = None


class SlaPolicy(BaseModel):
    """Deadlines per priority; counted in the team's business hours when `business_time` is on."""

    model_config = ConfigDict(extra="forbid")

    business_time: bool = False
    warn_at: float = Field(default=0.8, gt=0, lt=1)
    targets: dict[Priority, Target] = Field(default_factory=lambda: dict(DEFAULT_TARGETS))
    escalation: Escalation = Field(default_factory=Escalation)

    @model_validator(mode="after")
    def _every_priority(self) -> Self:
        for priority in PRIORITIES:
            self.targets.setdefault(priority, DEFAULT_TARGETS[priority])
        self.targets = {p: self.targets[p] for p in PRIORITIES}
        return self

    def target(self, priority: str) -> Target:
        return self.targets[cast(Priority, priority)]


class TeamUpdate(BaseModel):
    """The body of `PUT /v1/teams/{team}`: everything about a team but its slug."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    members: list[Actor] = Field(default_factory=list, max_length=1_000)
    hours: BusinessHoursSpec | None = None
    sla: SlaPolicy = Field(default_factory=SlaPolicy)

    @model_validator(mode="after")
    def _business_time_needs_hours(self) -> Self:
        if self.sla.business_time and self.hours is None:
            raise ValueError("the SLA counts business time, so the team needs hours")
        return self


class TeamSpec(TeamUpdate):
    """A team as declared in a configuration file."""

    slug: Slug


class TeamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    members: list[str]
    hours: BusinessHoursSpec | None
    sla: SlaPolicy
    updated_at: datetime
