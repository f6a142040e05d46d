"""Matching a mention against rules: pure functions, no database."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from app.routing import text
from app.routing.schemas import RuleConditions, RuleSpec, RuleVerdict

# Whether a team is within its business hours at a moment.
TeamHours = Callable[[str, datetime], bool]


@dataclass(frozen=True)
class MentionFacts:
    """What rules can look at: the classification, the account addressed, the post, its author."""

    label: str
    probability: float
    triage: bool
    account_handle: str
    account_kind: str
    lang: str | None
    text: str = ""
    author_handle: str = ""
    author_verified: bool | None = None
    author_followers: int | None = None
    at: datetime | None = None  # when the mention is routed, for business hours


def mismatches(conditions: RuleConditions, facts: MentionFacts) -> list[str]:
    """Why the conditions do not match these facts, business hours aside (empty: they match)."""
    reasons = _classification_mismatches(conditions, facts)
    reasons += _address_mismatches(conditions, facts)
    reasons += _text_mismatches(conditions, facts)
    reasons += _author_mismatches(conditions, facts)
    return reasons


def _classification_mismatches(conditions: RuleConditions, facts: MentionFacts) -> list[str]:
    reasons = []
    if conditions.labels is not None and facts.label not in conditions.labels:
        reasons.append(f"label {facts.label} not in {conditions.labels}")
    if conditions.triage is not None and facts.triage != conditions.triage:
        reasons.append(f"triage is {facts.triage}")
    if conditions.min_confidence is not None and facts.probability < conditions.min_confidence:
        reasons.append(f"confidence {facts.probability:.3f} below {conditions.min_confidence}")
    if conditions.max_confidence is not None and facts.probability > conditions.max_confidence:
        reasons.append(f"confidence {facts.probability:.3f} above {conditions.max_confidence}")
    return reasons


def _address_mismatches(conditions: RuleConditions, facts: MentionFacts) -> list[str]:
    reasons = []
    if conditions.account_kinds is not None and facts.account_kind not in conditions.account_kinds:
        reasons.append(
            f"account kind {facts.account_kind} not in {[str(k) for k in conditions.account_kinds]}"
        )
    if conditions.accounts is not None and facts.account_handle not in conditions.accounts:
        reasons.append(f"account {facts.account_handle} not in {conditions.accounts}")
    if conditions.languages is not None and (facts.lang or "") not in conditions.languages:
        reasons.append(f"language {facts.lang} not in {conditions.languages}")
    return reasons


def _text_mismatches(conditions: RuleConditions, facts: MentionFacts) -> list[str]:
    reasons = []
    keywords = conditions.keywords
    if keywords is not None and text.matched_keyword(tuple(keywords), facts.text) is None:
        reasons.append(f"none of the keywords {keywords} in the text")
    if conditions.regex is not None and not text.regex_matches(conditions.regex, facts.text):
        reasons.append(f"the text does not match /{conditions.regex}/")
    return reasons


def _author_mismatches(conditions: RuleConditions, facts: MentionFacts) -> list[str]:
    reasons = []
    handle = facts.author_handle.lower()
    if conditions.authors is not None and handle not in conditions.authors:
        reasons.append(f"author @{handle} not in the rule's list of {len(conditions.authors)}")
    verified = conditions.author_verified
    if verified is not None and bool(facts.author_verified) != verified:
        reasons.append(f"author verified is {bool(facts.author_verified)}")
    minimum = conditions.min_followers
    if minimum is not None and (facts.author_followers or 0) < minimum:
        reasons.append(f"author has {facts.author_followers or 0} followers, fewer than {minimum}")
    return reasons


def rule_mismatches(rule: RuleSpec, facts: MentionFacts, hours: TeamHours) -> list[str]:
    """Why this rule does not match, business hours of its team included."""
    reasons = mismatches(rule.when, facts)
    wanted = rule.when.business_hours
    if wanted is not None and rule.team is not None and facts.at is not None:
        is_open = hours(rule.team, facts.at)
        if is_open != wanted:
            reasons.append(f"team {rule.team} is {'open' if is_open else 'closed'}")
    return reasons


def first_match(rules: list[RuleSpec], facts: MentionFacts, hours: TeamHours) -> int:
    """The position of the first matching rule; tables end with a catch-all, so one always does."""
    for position, rule in enumerate(rules):
        if not rule_mismatches(rule, facts, hours):
            return position
    raise LookupError("no rule matched: the table has no catch-all")


def explain(
    rules: list[RuleSpec], facts: MentionFacts, hours: TeamHours
) -> tuple[int, list[RuleVerdict]]:
    """The first matching rule, and the verdict of every rule up to it."""
    tried = []
    for position, rule in enumerate(rules):
        reasons = rule_mismatches(rule, facts, hours)
        tried.append(RuleVerdict(rule=rule.name, matched=not reasons, reasons=reasons))
        if not reasons:
            return position, tried
    raise LookupError("no rule matched: the table has no catch-all")
