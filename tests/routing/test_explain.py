"""POST /v1/routing/explain: every rule condition, business hours, the CEO rule, nothing stored."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.ingest.models import Mention
from app.outbox.models import OutboxEvent
from app.routing.models import RoutingDecision
from app.tickets.models import Ticket
from tests.builders import CEO, COMPANY, DELAY_EN, DELAY_FR, PRESS_EN, mention
from tests.conftest import Db
from tests.routing.tables import explain, put_table

CONDITIONS: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]] = [
    (
        {"labels": ["press", "investor"]},
        {"label": "investor"},
        {"label": "delay"},
        "label delay not in ['press', 'investor']",
    ),
    ({"triage": True}, {"probability": 0.44}, {"probability": 0.45}, "triage is False"),
    (
        {"min_confidence": 0.9},
        {"probability": 0.9},
        {"probability": 0.89},
        "confidence 0.890 below 0.9",
    ),
    (
        {"max_confidence": 0.6},
        {"probability": 0.6},
        {"probability": 0.61},
        "confidence 0.610 above 0.6",
    ),
    (
        {"account_kinds": ["executive"]},
        {"account": CEO},
        {"account": COMPANY},
        "account kind company not in ['executive']",
    ),
    (
        {"accounts": ["@TransNordAide"]},
        {"account": "transnordaide"},
        {"account": COMPANY},
        "account transnordrail not in ['transnordaide']",
    ),
    ({"languages": ["FR"]}, {"lang": "Fr"}, {"lang": "en"}, "language en not in ['fr']"),
    (
        {"languages": ["fr"]},
        {"text": DELAY_FR},
        {"text": DELAY_EN},
        "language en not in ['fr']",
    ),
    (
        {"keywords": ["objet perdu", "Grève"]},
        {"text": "Encore une GREVE demain ?"},
        {"text": "les grévistes bloquent tout"},
        "none of the keywords ['objet perdu', 'Grève'] in the text",
    ),
    (
        {"regex": r"\btrain [0-9]{4}\b"},
        {"text": "TRAIN 8812 stuck"},
        {"text": "train 88120 stuck"},
        r"the text does not match /\btrain [0-9]{4}\b/",
    ),
    (
        {"authors": ["@LeMonde_Transports", "ReutersTransport"]},
        {"author": "lemonde_transports"},
        {"author": "@Rider"},
        "author @rider not in the rule's list of 2",
    ),
    ({"author_verified": True}, {"author_verified": True}, {}, "author verified is False"),
    (
        {"min_followers": 100_000},
        {"author_followers": 100_000},
        {"author_followers": 99_999},
        "author has 99999 followers, fewer than 100000",
    ),
]


@pytest.mark.parametrize(
    ("when", "matching", "other", "reason"),
    CONDITIONS,
    ids=[
        "labels",
        "triage",
        "min_confidence",
        "max_confidence",
        "account_kinds",
        "accounts",
        "languages-given",
        "languages-guessed",
        "keywords",
        "regex",
        "authors",
        "author_verified",
        "min_followers",
    ],
)
def test_each_condition_matches_or_says_why_not(
    client: TestClient,
    when: dict[str, Any],
    matching: dict[str, Any],
    other: dict[str, Any],
    reason: str,
) -> None:
    rule = {"name": "under-test", "when": when, "team": "hr", "priority": "P2", "tags": ["t"]}
    version = put_table(client, rule)["version"]

    hit = explain(client, **matching)
    miss = explain(client, **other)

    assert (hit["rule"], hit["team"], hit["priority"], hit["tags"]) == (
        "under-test",
        "hr",
        "P2",
        ["t"],
    )
    assert hit["tried"] == [{"rule": "under-test", "matched": True, "reasons": []}]
    assert hit["table_version"] == version
    assert (miss["rule"], miss["team"], miss["priority"]) == ("rest", None, None)
    assert miss["tried"] == [
        {"rule": "under-test", "matched": False, "reasons": [reason]},
        {"rule": "rest", "matched": True, "reasons": []},
    ]


def test_explain_answers_the_classification_it_used(client: TestClient) -> None:
    chosen = {"text": DELAY_FR, "account": COMPANY, "label": "praise", "probability": 0.3}
    by_model = {"text": DELAY_FR, "account": COMPANY}

    chosen_body = client.post("/v1/routing/explain", json=chosen).json()
    model_body = client.post("/v1/routing/explain", json=by_model).json()

    assert {k: chosen_body[k] for k in ("label", "probability", "triage", "model_version")} == {
        "label": "praise",
        "probability": 0.3,
        "triage": True,
        "model_version": None,
    }
    assert chosen_body["lang"] == "fr"
    assert chosen_body["explanation"]["rule"] == "low-confidence"
    assert model_body["label"] == "delay"
    assert model_body["model_version"].startswith("aiguilleur-")


def test_a_mention_that_meets_no_condition_shows_every_rule_and_its_reason(
    client: TestClient,
) -> None:
    put_table(
        client,
        {"name": "investors", "when": {"labels": ["investor"]}, "team": "hr", "priority": "P3"},
        {"name": "ceo", "when": {"account_kinds": ["executive"]}, "team": "hr", "priority": "P1"},
        {"name": "french", "when": {"languages": ["fr"]}, "team": "hr", "priority": "P2"},
        {"name": "big", "when": {"min_followers": 10, "author_verified": True}},
    )

    explanation = explain(client, lang="en", author_followers=3)

    assert explanation["rule"] == "rest"
    assert [(v["rule"], v["reasons"]) for v in explanation["tried"]] == [
        ("investors", ["label delay not in ['investor']"]),
        ("ceo", ["account kind company not in ['executive']"]),
        ("french", ["language en not in ['fr']"]),
        ("big", ["author verified is False", "author has 3 followers, fewer than 10"]),
        ("rest", []),
    ]


def test_rules_after_the_first_match_are_not_tried(client: TestClient) -> None:
    put_table(
        client,
        {
            "name": "press",
            "when": {"labels": ["press"]},
            "team": "communications",
            "priority": "P2",
        },
        {
            "name": "delays",
            "when": {"labels": ["delay"]},
            "team": "customer-service",
            "priority": "P3",
        },
        {"name": "late", "when": {"keywords": ["late"]}, "team": "hr", "priority": "P1"},
    )

    explanation = explain(client)

    assert (explanation["rule"], explanation["team"], explanation["priority"]) == (
        "delays",
        "customer-service",
        "P3",
    )
    assert [v["rule"] for v in explanation["tried"]] == ["press", "delays"]


PARIS_9_TO_6 = {
    "timezone": "Europe/Paris",
    "weekly": {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-07-14"],
}


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        ("2026-07-15T09:00:00+02:00", True),  # a Wednesday, at opening
        ("2026-07-15T15:59:00Z", True),  # 17:59 in Paris
        ("2026-07-15T16:00:00Z", False),  # 18:00 in Paris: closed, although open in UTC
        ("2026-07-15T07:30:00+00:00", True),  # 09:30 in Paris, before 09:00 in UTC terms
        ("2026-07-18T11:00:00+02:00", False),  # a Saturday
        ("2026-07-14T11:00:00+02:00", False),  # a Tuesday, but a holiday
    ],
)
def test_business_hours_use_the_hours_of_the_rule_s_team(
    client: TestClient, at: str, is_open: bool
) -> None:
    team = {"name": "Communications", "members": ["elise"], "hours": PARIS_9_TO_6}
    assert client.put("/v1/teams/communications", json=team).status_code == 200
    put_table(
        client,
        {
            "name": "office",
            "when": {"business_hours": True},
            "team": "communications",
            "priority": "P1",
        },
    )

    explanation = explain(client, at=at)

    assert explanation["rule"] == ("office" if is_open else "rest")
    expected = [] if is_open else ["team communications is closed"]
    assert explanation["tried"][0]["reasons"] == expected


def test_a_rule_for_outside_business_hours_matches_when_the_team_is_closed(
    client: TestClient,
) -> None:
    put_table(
        client,
        {
            "name": "after-hours",
            "when": {"business_hours": False},
            "team": "triage",
            "priority": "P4",
        },
    )
    team = {"name": "Triage", "hours": PARIS_9_TO_6}
    assert client.put("/v1/teams/triage", json=team).status_code == 200

    saturday = explain(client, at="2026-07-18T11:00:00+02:00")
    wednesday = explain(client, at="2026-07-15T11:00:00+02:00")

    assert saturday["rule"] == "after-hours"
    assert wednesday["tried"][0]["reasons"] == ["team triage is open"]


def test_a_rule_for_outside_business_hours_does_not_break_ingest(client: TestClient) -> None:
    put_table(
        client,
        {"name": "after-hours", "when": {"business_hours": False}, "team": "hr", "priority": "P4"},
    )

    response = client.post("/v1/mentions", json=mention("1", DELAY_EN))

    # hr has no hours, so it is always open and the rule never matches
    assert response.status_code == 201
    assert response.json()["routing"]["rule"] == "rest"


def test_a_time_without_timezone_is_not_a_server_error(client: TestClient) -> None:
    put_table(
        client,
        {"name": "office", "when": {"business_hours": True}, "team": "hr", "priority": "P3"},
    )

    body = {"text": "hello", "account": COMPANY, "label": "delay", "at": "2026-07-15T11:00:00"}
    response = client.post("/v1/routing/explain", json=body)

    assert response.status_code in {200, 422}


def test_the_ceo_rule_sends_press_to_communications_first(client: TestClient) -> None:
    to_ceo = client.post("/v1/routing/explain", json={"text": PRESS_EN, "account": CEO}).json()
    to_company = client.post(
        "/v1/routing/explain", json={"text": PRESS_EN, "account": "@transnordrail"}
    ).json()

    assert (to_ceo["label"], to_ceo["triage"]) == ("press", False)
    ceo = to_ceo["explanation"]
    assert (ceo["rule"], ceo["team"], ceo["priority"], ceo["table_version"]) == (
        "press-to-ceo",
        "communications",
        "P1",
        1,
    )
    assert [(v["rule"], v["matched"], v["reasons"]) for v in ceo["tried"]] == [
        ("low-confidence", False, ["triage is False"]),
        ("vip-journalists", False, ["author @someone not in the rule's list of 2"]),
        ("press-to-ceo", True, []),
    ]
    company = to_company["explanation"]
    assert (company["rule"], company["team"], company["priority"]) == (
        "press",
        "communications",
        "P2",
    )
    reasons = {v["rule"]: v["reasons"] for v in company["tried"]}
    assert reasons["press-to-ceo"] == ["account kind company not in ['executive']"]
    assert reasons["service-to-ceo"] == [
        "label press not in ['schedule', 'delay', 'problem']",
        "account kind company not in ['executive']",
    ]
    assert reasons["lost-property"][0].startswith("none of the keywords ['lost bag'")
    assert len(company["tried"]) == 10


def test_explain_refuses_unknown_accounts_labels_and_versions(client: TestClient) -> None:
    unknown_account = client.post("/v1/routing/explain", json={"text": "hi", "account": "nobody"})
    unknown_label = client.post(
        "/v1/routing/explain", json={"text": "hi", "account": COMPANY, "label": "weather"}
    )
    unknown_version = client.post(
        "/v1/routing/explain", json={"text": "hi", "account": COMPANY, "version": 99}
    )

    assert unknown_account.status_code == 422
    assert unknown_account.json()["error"]["code"] == "unknown_account"
    assert unknown_label.status_code == 422
    assert "press" in unknown_label.json()["error"]["details"]["labels"]
    assert unknown_version.status_code == 404
    assert unknown_version.json()["error"]["code"] == "not_found"


def test_explain_stores_nothing(client: TestClient, db: Db) -> None:
    assert client.post("/v1/mentions", json=mention("1", DELAY_EN)).status_code == 201
    before = [db.count(m) for m in (Mention, Ticket, RoutingDecision, OutboxEvent)]

    for body in ({"text": DELAY_EN, "account": COMPANY}, {"text": PRESS_EN, "account": CEO}):
        assert client.post("/v1/routing/explain", json=body).status_code == 200

    assert before == [1, 1, 1, 2]  # ticket.created, mention.routed
    assert [db.count(m) for m in (Mention, Ticket, RoutingDecision, OutboxEvent)] == before


def test_explain_can_use_an_older_version(client: TestClient) -> None:
    put_table(
        client,
        {"name": "press-to-hr", "when": {"labels": ["press"]}, "team": "hr", "priority": "P4"},
    )
    body = {"text": PRESS_EN, "account": COMPANY, "label": "press"}

    now = client.post("/v1/routing/explain", json=body).json()["explanation"]
    then = client.post("/v1/routing/explain", json={**body, "version": 1}).json()["explanation"]

    assert (now["table_version"], now["rule"], now["team"]) == (2, "press-to-hr", "hr")
    assert (then["table_version"], then["rule"], then["team"]) == (1, "press", "communications")


@pytest.mark.parametrize("moment", ["0001-01-01T00:30:00Z", "9999-12-31T23:00:00Z"])
def test_a_moment_out_of_range_is_a_422(client: TestClient, moment: str) -> None:
    body = {"text": "late", "account": COMPANY, "at": moment}

    response = client.post("/v1/routing/explain", json=body)

    assert response.status_code == 422
