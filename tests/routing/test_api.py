"""The routing table through the HTTP API: every rule condition explained, versions, refusals."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.ingest.models import Mention
from app.outbox.models import OutboxEvent
from app.routing.models import RoutingDecision
from app.tickets.models import Ticket
from tests.builders import CEO, COMPANY, DELAY_EN, DELAY_FR, PRESS_EN, mention
from tests.conftest import Db, KeyMaker

CATCH_ALL = {"name": "rest"}
EXAMPLE_RULES = 13


def put_table(client: TestClient, *rules: dict[str, Any]) -> dict[str, Any]:
    """Make these rules, then a catch-all, the active table."""
    response = client.put("/v1/routing/table", json={"rules": [*rules, CATCH_ALL]})
    assert response.status_code == 201, response.text
    table: dict[str, Any] = response.json()
    return table


def explain(client: TestClient, **fields: Any) -> dict[str, Any]:
    """The explanation of a delay on the company's account, these fields aside."""
    body = {"text": "the 8:12 is late again", "account": COMPANY, "label": "delay", **fields}
    response = client.post("/v1/routing/explain", json=body)
    assert response.status_code == 200, response.text
    explanation: dict[str, Any] = response.json()["explanation"]
    return explanation


def given(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule as read back, without the conditions it leaves unset."""
    when = {name: value for name, value in rule["when"].items() if value is not None}
    return {**rule, "when": when}


def active_version(client: TestClient) -> int:
    version: int = client.get("/v1/routing/table").json()["version"]
    return version


# condition, input that matches, input that does not, the reason it does not
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


OUTSIDE_HOURS_BUG = (
    "BUG: app/routing/service.py:125 loads calendars only for the teams of rules whose "
    "`business_hours` is truthy, so a rule with `business_hours: false` makes "
    "LoadedTable.is_open (service.py:33) raise KeyError: explain and ingest answer 500"
)


@pytest.mark.xfail(strict=True, raises=KeyError, reason=OUTSIDE_HOURS_BUG)
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


@pytest.mark.xfail(strict=True, raises=KeyError, reason=OUTSIDE_HOURS_BUG)
def test_a_rule_for_outside_business_hours_does_not_break_ingest(client: TestClient) -> None:
    put_table(
        client,
        {"name": "after-hours", "when": {"business_hours": False}, "team": "hr", "priority": "P4"},
    )

    response = client.post("/v1/mentions", json=mention("1", DELAY_EN))

    # hr has no hours, so it is always open and the rule never matches
    assert response.status_code == 201
    assert response.json()["routing"]["rule"] == "rest"


@pytest.mark.xfail(
    strict=True,
    raises=ValueError,
    reason="BUG: ExplainIn.at (app/routing/schemas.py:162) accepts a datetime without a "
    "timezone and Calendar.is_open raises ValueError on it (app/teams/calendar.py:181): "
    "a 500 instead of a 422, or of reading it as UTC as ingest does for created_at",
)
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

    assert before == [1, 1, 1, 1]
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


def test_each_changed_table_is_a_new_active_version(client: TestClient) -> None:
    first = put_table(
        client, {"name": "a", "when": {"labels": ["press"]}, "team": "hr", "priority": "P1"}
    )
    second = put_table(
        client, {"name": "a", "when": {"labels": ["press"]}, "team": "hr", "priority": "P2"}
    )

    assert (first["version"], second["version"]) == (2, 3)
    assert (second["active"], second["source"]) == (True, "api:admin")
    assert second["rules"][0]["priority"] == "P2"
    assert given(second["rules"][1]) == {
        "name": "rest",
        "when": {},
        "team": None,
        "priority": None,
        "tags": [],
    }
    assert active_version(client) == 3


def test_the_same_table_again_is_200_and_the_same_version(client: TestClient) -> None:
    rule = {"name": "a", "when": {"accounts": ["@TransNordRail"]}, "team": "hr", "priority": "P1"}
    created = put_table(client, rule)

    again = client.put("/v1/routing/table", json={"rules": [rule, CATCH_ALL]})
    normalised = {**rule, "when": {"accounts": ["transnordrail"]}}
    same = client.put("/v1/routing/table", json={"rules": [normalised, CATCH_ALL]})

    assert (again.status_code, same.status_code) == (200, 200)
    assert again.json() == created
    assert same.json()["version"] == created["version"] == 2
    assert len(client.get("/v1/routing/versions").json()) == 2


def test_the_table_read_back_and_put_again_is_unchanged(client: TestClient) -> None:
    table = client.get("/v1/routing/table").json()

    response = client.put("/v1/routing/table", json={"rules": table["rules"]})

    assert len(table["rules"]) == EXAMPLE_RULES
    assert response.status_code == 200
    assert response.json()["version"] == table["version"] == 1


def test_old_versions_are_kept_as_they_were(client: TestClient) -> None:
    original = client.get("/v1/routing/table").json()
    put_table(client, {"name": "x", "when": {"regex": "strike"}, "team": "hr", "priority": "P1"})
    put_table(
        client, {"name": "y", "when": {"keywords": ["strike"]}, "team": "hr", "priority": "P2"}
    )

    one = client.get("/v1/routing/table", params={"version": 1}).json()
    two = client.get("/v1/routing/table", params={"version": 2}).json()

    assert one == {**original, "active": False}
    assert one["source"] == "test"
    assert (two["version"], two["active"]) == (2, False)
    assert given(two["rules"][0]) == {
        "name": "x",
        "when": {"regex": "strike"},
        "team": "hr",
        "priority": "P1",
        "tags": [],
    }
    missing = client.get("/v1/routing/table", params={"version": 4})
    assert missing.status_code == 404
    assert missing.json()["error"]["details"] == {"version": 4}


def test_versions_are_listed_newest_first_with_their_source(
    client: TestClient, make_key: KeyMaker
) -> None:
    put_table(client, {"name": "a", "when": {"labels": ["press"]}, "team": "hr", "priority": "P1"})
    ops = make_key("routing:write", name="ops")
    response = client.put("/v1/routing/table", json={"rules": [CATCH_ALL]}, headers=ops)
    assert response.status_code == 201

    versions = client.get("/v1/routing/versions", headers=ops).json()

    assert [(v["version"], v["active"], v["source"], v["rules"]) for v in versions] == [
        (3, True, "api:ops", 1),
        (2, False, "api:admin", 2),
        (1, False, "test", EXAMPLE_RULES),
    ]
    checksums = [v["checksum"] for v in versions]
    assert len(set(checksums)) == 3
    assert all(len(c) == 64 for c in checksums)


def test_routing_needs_the_routing_write_scope(client: TestClient, make_key: KeyMaker) -> None:
    ingest_only = make_key("ingest")
    body = {"rules": [CATCH_ALL]}

    assert client.put("/v1/routing/table", json=body, headers=ingest_only).status_code == 403
    assert client.get("/v1/routing/versions", headers=ingest_only).status_code == 403
    assert active_version(client) == 1


BROKEN: list[tuple[list[dict[str, Any]], str]] = [
    ([{"name": "a", "when": {"labels": ["press"]}}], "the last rule must be a catch-all"),
    ([{"name": "a", "team": "nobody", "priority": "P1"}], "unknown teams: nobody"),
    ([{"name": "a", "when": {"regex": "(a"}}, CATCH_ALL], "not valid for RE2: missing )"),
    ([{"name": "a", "when": {"regex": "(?=a)"}}, CATCH_ALL], "not valid for RE2"),
    ([{"name": "a", "when": {"business_hours": True}}, CATCH_ALL], "tests business hours"),
    ([CATCH_ALL, CATCH_ALL], "rule names must be unique: rest"),
    ([{"name": "a", "team": "hr"}], "needs a priority"),
    ([{"name": "a", "when": {"min_confidence": 0.8, "max_confidence": 0.2}}, CATCH_ALL], "above"),
    ([{"name": "a", "when": {"colour": "red"}}, CATCH_ALL], "Extra inputs are not permitted"),
    ([], "at least 1 item"),
]


@pytest.mark.parametrize(
    ("rules", "reason"),
    BROKEN,
    ids=[
        "no-catch-all",
        "unknown-team",
        "unbalanced-regex",
        "lookahead-regex",
        "hours-without-team",
        "duplicate-names",
        "team-without-priority",
        "confidence-range",
        "unknown-condition",
        "no-rules",
    ],
)
def test_a_broken_table_is_refused_with_reasons_and_the_active_one_stays(
    client: TestClient, rules: list[dict[str, Any]], reason: str
) -> None:
    before = client.get("/v1/routing/table").json()

    response = client.put("/v1/routing/table", json={"rules": rules})

    assert response.status_code == 422
    error = response.json()["error"]
    assert reason in f"{error['message']} {error['details']}"
    assert client.get("/v1/routing/table").json() == before
    assert [v["version"] for v in client.get("/v1/routing/versions").json()] == [1]


def test_an_unknown_team_is_an_invalid_configuration(client: TestClient) -> None:
    rules = [
        {"name": "a", "team": "nobody", "priority": "P1"},
        {"name": "b", "team": "ghosts", "priority": "P2"},
        CATCH_ALL,
    ]

    error = client.put("/v1/routing/table", json={"rules": rules}).json()["error"]

    assert error["code"] == "invalid_configuration"
    assert error["details"] == {"unknown_teams": ["ghosts", "nobody"]}


def test_each_mention_keeps_the_version_and_rule_that_routed_it(client: TestClient) -> None:
    before = client.post("/v1/mentions", json=mention("1", DELAY_EN)).json()
    put_table(
        client, {"name": "all-to-hr", "team": "hr", "priority": "P4", "when": {"min_confidence": 0}}
    )
    after = client.post(
        "/v1/mentions", json=mention("2", DELAY_EN, author={"handle": "other"})
    ).json()

    old = client.get(f"/v1/mentions/{before['id']}").json()["routing"]
    new = client.get(f"/v1/mentions/{after['id']}").json()["routing"]
    ticket = client.get(f"/v1/tickets/{old['ticket_id']}").json()

    assert (old["table_version"], old["rule"], old["team"]) == (1, "disruption", "customer-service")
    assert (new["table_version"], new["rule"], new["team"], new["priority"]) == (
        2,
        "all-to-hr",
        "hr",
        "P4",
    )
    assert new["ticket_id"] not in (None, old["ticket_id"])
    assert (ticket["routing"]["table_version"], ticket["routing"]["rule"]) == (1, "disruption")
    assert [v["rule"] for v in ticket["routing"]["tried"]][-1] == "disruption"
