"""Rule matching and table validation: pure logic, no database."""

import unicodedata
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from app.configuration.schemas import ConfigFile
from app.routing.rules import MentionFacts, explain, first_match, mismatches, positions_by_label
from app.routing.schemas import RuleConditions, RuleSpec, TableSpec
from app.routing.text import fold

MONDAY_NOON_PARIS = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def always_open(team: str, at: datetime) -> bool:
    return True


def never_open(team: str, at: datetime) -> bool:
    return False


def facts(**overrides: object) -> MentionFacts:
    values: dict[str, object] = {
        "label": "delay",
        "probability": 0.9,
        "triage": False,
        "account_handle": "transnordrail",
        "account_kind": "company",
        "lang": "fr",
        "text": "Mon RER B est bloqué depuis 40 minutes à Châtelet, remboursement ?",
        "author_handle": "Marie_Journaliste",
        "author_verified": True,
        "author_followers": 12_000,
        "at": MONDAY_NOON_PARIS,
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
        ({"keywords": ["bloque"]}, True),  # accents and case do not matter
        ({"keywords": ["CHÂTELET", "gare du nord"]}, True),
        ({"keywords": ["bloq"]}, False),  # whole words only
        ({"keywords": ["40 minutes"]}, True),  # phrases
        ({"regex": r"rer\s+[a-e]\b"}, True),  # case-insensitive
        ({"regex": r"^remboursement"}, False),
        ({"authors": ["@marie_journaliste", "other"]}, True),
        ({"authors": ["someone_else"]}, False),
        ({"author_verified": True}, True),
        ({"author_verified": False}, False),
        ({"min_followers": 12_000}, True),
        ({"min_followers": 12_001}, False),
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

    assert first_match(table.rules, facts(), always_open) == 1
    assert first_match(table.rules, facts(account_kind="executive"), always_open) == 0
    assert first_match(table.rules, facts(label="praise"), always_open) == 3


def test_unknown_follower_counts_and_verification_do_not_pass_thresholds() -> None:
    unknown = facts(author_followers=None, author_verified=None)

    assert mismatches(RuleConditions(min_followers=1), unknown) != []
    assert mismatches(RuleConditions(author_verified=True), unknown) != []
    assert mismatches(RuleConditions(author_verified=False), unknown) == []


def test_business_hours_ask_the_rule_s_team() -> None:
    rules = TableSpec.model_validate(
        {
            "rules": [
                {"name": "day", "when": {"business_hours": True}, "team": "ops", "priority": "P2"},
                {"name": "night", "team": "oncall", "priority": "P1"},
            ]
        }
    ).rules
    asked: list[tuple[str, datetime]] = []

    def ops_open(team: str, at: datetime) -> bool:
        asked.append((team, at))
        return True

    assert first_match(rules, facts(), ops_open) == 0
    assert asked == [("ops", MONDAY_NOON_PARIS)]
    assert first_match(rules, facts(), never_open) == 1
    assert explain(rules, facts(), never_open)[1][0].reasons == ["team ops is closed"]


def test_explain_gives_every_rule_tried_up_to_the_match() -> None:
    rules = TableSpec.model_validate(
        {
            "rules": [
                {
                    "name": "ceo",
                    "when": {"account_kinds": ["executive"]},
                    "team": "vip",
                    "priority": "P1",
                },
                {"name": "vip", "when": {"authors": ["someone"]}, "team": "vip", "priority": "P1"},
                {"name": "delay", "when": {"labels": ["delay"]}, "team": "ops", "priority": "P2"},
                {"name": "rest"},
            ]
        }
    ).rules

    position, tried = explain(rules, facts(), always_open)

    assert position == 2
    assert [(v.rule, v.matched) for v in tried] == [("ceo", False), ("vip", False), ("delay", True)]
    assert tried[0].reasons == ["account kind company not in ['executive']"]
    assert tried[1].reasons == ["author @marie_journaliste not in the rule's list of 1"]


def test_a_pathological_regex_runs_in_linear_time() -> None:
    # (a+)+$ backtracks exponentially in Python's re; RE2 answers at once.
    conditions = RuleConditions(regex=r"(a+)+$")

    assert mismatches(conditions, facts(text="a" * 100_000 + "!")) != []


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
        ([{"name": "a", "when": {"regex": "(unclosed"}}, {"name": "b"}], "not valid for RE2"),
        ([{"name": "a", "when": {"regex": r"(a)\1"}}, {"name": "b"}], "not valid for RE2"),
        ([{"name": "a", "when": {"regex": "x" * 501}}, {"name": "b"}], "longer than 500"),
        ([{"name": "a", "when": {"business_hours": True}}, {"name": "b"}], "needs a team"),
        ([{"name": "a", "when": {"min_followers": -1}}, {"name": "b"}], "greater than or equal"),
        ([{"name": "a", "when": {"authors": ["not a handle!"]}}, {"name": "b"}], "pattern"),
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


def reference_fold(text: str) -> str:
    """What `fold` must give: the whole text case-folded, decomposed, its marks dropped."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@pytest.mark.parametrize(
    "text",
    [
        "Mon RER B est bloqué à Châtelet",
        "RETARDÉ, ÇA SUFFIT",
        "Straße ﬁn Ǆ İ ΐ ǰ Ｔｒａｉｎ K\u212a",  # expansions, ligatures, full width, the Kelvin sign
        "e\u0301\u0327 a\u0308\u0300",  # marks already apart, several on one letter
        "Поезд опаздывает 東京 🚆",
        "plain ascii text",
    ],
)
def test_folding_is_the_whole_text_decomposed(text: str) -> None:
    assert fold(text) == reference_fold(text)


def test_folding_agrees_character_by_character_over_the_latin_and_greek_blocks() -> None:
    every = "".join(chr(code) for code in range(0x80, 0x3FF))
    assert fold(every) == reference_fold(every)
    assert fold("Retardé") == fold("retarde") == "retarde"


def test_a_keyword_is_found_in_the_folded_text_once_per_mention() -> None:
    facts_ = facts(text="Le train est RETARDÉ à Créteil")
    rules = [
        RuleSpec(name=f"r{i}", team="ops", priority="P2", when=RuleConditions(keywords=["créteil"]))
        for i in range(2)
    ]

    assert first_match(rules, facts_, lambda team, at: True) == 0
    assert facts_.folded_text == "le train est retarde a creteil"
    assert mismatches(RuleConditions(keywords=["lyon"]), facts_) == [
        "none of the keywords ['lyon'] in the text"
    ]


@pytest.mark.parametrize(
    "label",
    ["schedule", "delay", "problem", "praise", "press", "investor", "employee", "other", "x"],
)
def test_trying_only_the_rules_of_a_label_finds_the_same_rule(
    example_config: ConfigFile, label: str
) -> None:
    assert example_config.routing is not None
    rules = example_config.routing.rules
    by_label, any_label = positions_by_label(rules)
    positions = by_label.get(label, any_label)
    assert len(positions) < len(rules)
    variants = [
        facts(label=label),
        facts(label=label, triage=True),
        facts(label=label, account_kind="executive"),
        facts(label=label, author_followers=250_000),
        facts(label=label, author_handle="LeMonde_Transports"),
        facts(label=label, text="I lost my bag, objet perdu au guichet"),
    ]
    for case in variants:
        everything = first_match(rules, case, always_open)
        assert first_match(rules, case, always_open, positions) == everything, case
