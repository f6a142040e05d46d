"""Routing tables as written by people (YAML/JSON) and as read back from the API."""

from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.accounts.models import AccountKind
from app.accounts.schemas import Handle, normalise_handle
from app.fields import Count, Priority, UTCMoment
from app.routing.text import compile_regex


class RuleConditions(BaseModel):
    """What a mention must be for the rule to match; an empty set of conditions matches all."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str] | None = Field(default=None, min_length=1)
    triage: bool | None = None
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    max_confidence: float | None = Field(default=None, ge=0, le=1)
    account_kinds: list[AccountKind] | None = Field(default=None, min_length=1)
    accounts: list[str] | None = Field(default=None, min_length=1)
    languages: list[str] | None = Field(default=None, min_length=1)
    keywords: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, min_length=1, max_length=200
    )
    regex: str | None = Field(default=None, min_length=1)
    authors: list[Handle] | None = Field(default=None, min_length=1, max_length=10_000)
    author_verified: bool | None = None
    min_followers: Count | None = None
    business_hours: bool | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            compile_regex(pattern)
        return pattern

    @field_validator("accounts")
    @classmethod
    def _normalise_accounts(cls, handles: list[str] | None) -> list[str] | None:
        return None if handles is None else [normalise_handle(h) for h in handles]

    @field_validator("languages")
    @classmethod
    def _lower_languages(cls, languages: list[str] | None) -> list[str] | None:
        return None if languages is None else [lang.lower() for lang in languages]

    @model_validator(mode="after")
    def _confidence_range(self) -> Self:
        low, high = self.min_confidence, self.max_confidence
        if low is not None and high is not None and low > high:
            raise ValueError("min_confidence is above max_confidence")
        return self

    def is_catch_all(self) -> bool:
        return not self.model_dump(exclude_none=True)


class RuleSpec(BaseModel):
    """One rule: its conditions and where a matching mention goes (no team: stored, no ticket)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    when: RuleConditions = Field(default_factory=RuleConditions)
    team: str | None = None
    priority: Priority | None = None
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _team_needs_priority(self) -> Self:
        if self.team is None and self.when.business_hours is not None:
            raise ValueError(f"rule {self.name!r} tests business hours, so it needs a team")
        if self.team is not None and self.priority is None:
            raise ValueError(f"rule {self.name!r} sends to a team, so it needs a priority (P1-P4)")
        if self.team is None and self.priority is not None:
            raise ValueError(f"rule {self.name!r} has a priority but no team")
        return self


class TableSpec(BaseModel):
    """An ordered list of rules; the first that matches wins, and the last must match everything."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RuleSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique: {', '.join(duplicates)}")
        if not self.rules[-1].when.is_catch_all():
            raise ValueError("the last rule must be a catch-all (no conditions)")
        return self


class TableRead(TableSpec):
    """A stored version of the routing table."""

    version: int
    active: bool
    source: str
    created_at: datetime


class VersionRead(BaseModel):
    version: int
    active: bool
    source: str
    checksum: str
    rules: int
    created_at: datetime


class RuleVerdict(BaseModel):
    """One rule of the table as tried against a mention: matched, or why not."""

    rule: str
    matched: bool
    reasons: list[str]


class Explanation(BaseModel):
    """The rule a mention hits, and why each rule before it did not match."""

    table_version: int
    rule: str
    team: str | None
    priority: Priority | None
    tags: list[str]
    tried: list[RuleVerdict]


class RoutingRead(BaseModel):
    """Where one mention was routed."""

    team: str | None
    rule: str
    priority: Priority | None
    ticket_id: int | None
    table_version: int


class ExplainIn(BaseModel):
    """A mention to route on paper: nothing is stored. Give `label` (and `probability`) to test
    the rules on a classification of your choosing instead of the model's."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=25_000)
    account: Handle
    author: Handle = "someone"
    author_verified: bool | None = None
    author_followers: Count | None = None
    lang: str | None = Field(default=None, min_length=2, max_length=16)
    at: UTCMoment | None = None
    label: str | None = Field(default=None, max_length=32)
    probability: float | None = Field(default=None, ge=0, le=1)
    version: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _probability_of_a_label(self) -> Self:
        if self.probability is not None and self.label is None:
            raise ValueError("probability is the probability of a given label: give the label")
        return self


class ExplainRead(BaseModel):
    label: str
    probability: float
    triage: bool
    model_version: str | None
    lang: str | None
    explanation: Explanation
