"""Matching a mention against rules: pure functions, no database."""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

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

    @cached_property
    def folded_text(self) -> str:
        """The text as keywords are matched against it: folded once, whatever the rules."""
        return text.fold(self.text)


def mismatches(conditions: RuleConditions, facts: MentionFacts) -> list[str]:
    """Why the conditions do not match these facts, business hours aside (empty: they match)."""
    return list(_reasons(conditions, facts))


def _reasons(conditions: RuleConditions, facts: MentionFacts) -> Iterator[str]:
    """Each reason in turn, lazily: routing stops at the first, explaining reads them all."""
    yield from _classification_mismatches(conditions, facts)
    yield from _address_mismatches(conditions, facts)
    yield from _text_mismatches(conditions, facts)
    yield from _author_mismatches(conditions, facts)


def _classification_mismatches(conditions: RuleConditions, facts: MentionFacts) -> Iterator[str]:
    if conditions.labels is not None and facts.label not in conditions.labels:
        yield f"label {facts.label} not in {conditions.labels}"
    if conditions.triage is not None and facts.triage != conditions.triage:
        yield f"triage is {facts.triage}"
    if conditions.min_confidence is not None and facts.probability < conditions.min_confidence:
        yield f"confidence {facts.probability:.3f} below {conditions.min_confidence}"
    if conditions.max_confidence is not None and facts.probability > conditions.max_confidence:
        yield f"confidence {facts.probability:.3f} above {conditions.max_confidence}"


def _address_mismatches(conditions: RuleConditions, facts: MentionFacts) -> Iterator[str]:
    if conditions.account_kinds is not None and facts.account_kind not in conditions.account_kinds:
        kinds = [str(kind) for kind in conditions.account_kinds]
        yield f"account kind {facts.account_kind} not in {kinds}"
    if conditions.accounts is not None and facts.account_handle not in conditions.accounts:
        yield f"account {facts.account_handle} not in {conditions.accounts}"
    if conditions.languages is not None and (facts.lang or "") not in conditions.languages:
        yield f"language {facts.lang} not in {conditions.languages}"


def _text_mismatches(conditions: RuleConditions, facts: MentionFacts) -> Iterator[str]:
    keywords = conditions.keywords
    if keywords is not None and text.matched_keyword(tuple(keywords), facts.folded_text) is None:
        yield f"none of the keywords {keywords} in the text"
    if conditions.regex is not None and not text.regex_matches(conditions.regex, facts.text):
        yield f"the text does not match /{conditions.regex}/"


def _author_mismatches(conditions: RuleConditions, facts: MentionFacts) -> Iterator[str]:
    handle = facts.author_handle.lower()
    if conditions.authors is not None and handle not in conditions.authors:
        yield f"author @{handle} not in the rule's list of {len(conditions.authors)}"
    verified = conditions.author_verified
    if verified is not None and bool(facts.author_verified) != verified:
        yield f"author verified is {bool(facts.author_verified)}"
    minimum = conditions.min_followers
    if minimum is not None and (facts.author_followers or 0) < minimum:
        yield f"author has {facts.author_followers or 0} followers, fewer than {minimum}"


def rule_mismatches(rule: RuleSpec, facts: MentionFacts, hours: TeamHours) -> list[str]:
    """Why this rule does not match, business hours of its team included."""
    return list(_rule_reasons(rule, facts, hours))


def _rule_reasons(rule: RuleSpec, facts: MentionFacts, hours: TeamHours) -> Iterator[str]:
    yield from _reasons(rule.when, facts)
    wanted = rule.when.business_hours
    if wanted is not None and rule.team is not None and facts.at is not None:
        is_open = hours(rule.team, facts.at)
        if is_open != wanted:
            yield f"team {rule.team} is {'open' if is_open else 'closed'}"


def first_match(
    rules: list[RuleSpec],
    facts: MentionFacts,
    hours: TeamHours,
    positions: Sequence[int] | None = None,
) -> int:
    """The position of the first matching rule; tables end with a catch-all, so one always does.
    A rule is left at its first failing condition: the reasons are for `explain`. `positions`:
    the only rules worth trying, in table order (see `positions_by_label`); all if None."""
    for position in range(len(rules)) if positions is None else positions:
        if next(_rule_reasons(rules[position], facts, hours), None) is None:
            return position
    raise LookupError("no rule matched: the table has no catch-all")


def positions_by_label(rules: list[RuleSpec]) -> tuple[dict[str, list[int]], list[int]]:
    """For each label a rule names, the rules a mention of that label can match, in table order;
    and the rules that name no label, for a label no rule names. Most rules name their labels,
    so a mention is tried against a few rules instead of the whole table."""
    named = {label for rule in rules for label in rule.when.labels or ()}
    any_label = [i for i, rule in enumerate(rules) if rule.when.labels is None]
    by_label = {
        label: [
            i
            for i, rule in enumerate(rules)
            if rule.when.labels is None or label in rule.when.labels
        ]
        for label in named
    }
    return by_label, any_label


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
