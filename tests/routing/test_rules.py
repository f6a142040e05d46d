"""Rule matching and table validation: pure logic, no database."""

import pytest
from pydantic import ValidationError

from app.routing.rules import MentionFacts, first_match, mismatches
from app.routing.schemas import RuleConditions, RuleSpec, TableSpec


def facts(**overrides: object) -> MentionFacts:
    values: dict[str, object] = {
        "label": "delay",
        "probability": 0.9,
        "triage": False,
        "account_handle": "transnordrail",
        "account_kind": "company",
        "lang": "fr",
    }
    values.update(overrides)
    return MentionFacts(**values)  # type: ignore[arg-type]


def test_an_empty_rule_matches_everything() -> None:
    assert mismatches(RuleConditions(), facts()) == []


@pytest.mark.parametrize(
    ("conditions", "matches"),
    [
        ({"labels": ["delay", "problem"]}, True),
        ({"labels": ["praise"]}, False),
        ({"min_confidence": 0.9}, True),
        ({"min_confidence": 0.95}, False),
        ({"max_confidence": 0.5}, False),
        ({"triage": True}, False),
        ({"triage": False}, True),
        ({"account_kinds": ["executive"]}, False),
        ({"account_kinds": ["company"]}, True),
        ({"accounts": ["@TransNordRail"]}, True),
        ({"accounts": ["other_account"]}, False),
        ({"languages": ["FR", "en"]}, True),
        ({"languages": ["en"]}, False),
        ({"labels": ["delay"], "languages": ["en"]}, False),
    ],
)
def test_each_condition(conditions: dict[str, object], matches: bool) -> None:
    assert (mismatches(RuleConditions.model_validate(conditions), facts()) == []) is matches


def test_a_mismatch_says_why() -> None:
    reasons = mismatches(RuleConditions(labels=["praise"], min_confidence=0.95), facts())

    assert reasons == ["label delay not in ['praise']", "confidence 0.900 below 0.95"]


def test_an_unknown_language_matches_no_language_condition() -> None:
    assert mismatches(RuleConditions(languages=["fr"]), facts(lang=None)) != []


def test_the_first_matching_rule_wins() -> None:
    table = TableSpec.model_validate(
        {
            "rules": [
                {
                    "name": "ceo",
                    "when": {"account_kinds": ["executive"]},
                    "team": "vip",
                    "priority": "P1",
                },
                {"name": "delay", "when": {"labels": ["delay"]}, "team": "ops", "priority": "P2"},
                {
                    "name": "delay-again",
                    "when": {"labels": ["delay"]},
                    "team": "other",
                    "priority": "P3",
                },
                {"name": "rest"},
            ]
        }
    )

    assert first_match(table.rules, facts()) == 1
    assert first_match(table.rules, facts(account_kind="executive")) == 0
    assert first_match(table.rules, facts(label="praise")) == 3


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            [{"name": "a", "when": {"labels": ["delay"]}, "team": "ops", "priority": "P2"}],
            "catch-all",
        ),
        ([{"name": "a", "team": "ops"}], "needs a priority"),
        ([{"name": "a", "priority": "P1"}], "no team"),
        ([{"name": "a", "when": {"labels": ["x"]}}, {"name": "a"}], "unique"),
        (
            [{"name": "a", "when": {"min_confidence": 0.8, "max_confidence": 0.2}}, {"name": "b"}],
            "min_confidence",
        ),
        ([{"name": "a", "when": {"colour": "blue"}}, {"name": "b"}], "Extra inputs"),
        ([{"name": "a", "team": "ops", "priority": "P9"}], "P1"),
        ([], "at least 1"),
    ],
)
def test_a_broken_table_is_refused_with_the_reason(
    rules: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        TableSpec.model_validate({"rules": rules})


def test_rule_spec_round_trips() -> None:
    rule = RuleSpec(
        name="x", when=RuleConditions(labels=["delay"]), team="ops", priority="P2", tags=["t"]
    )

    assert RuleSpec.model_validate(rule.model_dump()) == rule
