"""Matching a mention against rules: pure functions, no database."""

from dataclasses import dataclass

from app.routing.schemas import RuleConditions, RuleSpec


@dataclass(frozen=True)
class MentionFacts:
    """What rules can look at: the classification, the account addressed, the language."""

    label: str
    probability: float
    triage: bool
    account_handle: str
    account_kind: str
    lang: str | None


def mismatches(conditions: RuleConditions, facts: MentionFacts) -> list[str]:
    """Why the conditions do not match these facts (an empty list means they match)."""
    reasons = []
    if conditions.labels is not None and facts.label not in conditions.labels:
        reasons.append(f"label {facts.label} not in {conditions.labels}")
    if conditions.triage is not None and facts.triage != conditions.triage:
        reasons.append(f"triage is {facts.triage}")
    if conditions.min_confidence is not None and facts.probability < conditions.min_confidence:
        reasons.append(f"confidence {facts.probability:.3f} below {conditions.min_confidence}")
    if conditions.max_confidence is not None and facts.probability > conditions.max_confidence:
        reasons.append(f"confidence {facts.probability:.3f} above {conditions.max_confidence}")
    if conditions.account_kinds is not None and facts.account_kind not in conditions.account_kinds:
        reasons.append(f"account kind {facts.account_kind} not in {list(conditions.account_kinds)}")
    if conditions.accounts is not None and facts.account_handle not in conditions.accounts:
        reasons.append(f"account {facts.account_handle} not in {conditions.accounts}")
    if conditions.languages is not None and (facts.lang or "") not in conditions.languages:
        reasons.append(f"language {facts.lang} not in {conditions.languages}")
    return reasons


def first_match(rules: list[RuleSpec], facts: MentionFacts) -> int:
    """The position of the first matching rule; tables end with a catch-all, so one always does."""
    for position, rule in enumerate(rules):
        if not mismatches(rule.when, facts):
            return position
    raise LookupError("no rule matched: the table has no catch-all")
