"""The routing table through the HTTP API: versions, refusals, what each decision records."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.builders import COMPANY, DELAY_EN, mention
from tests.conftest import KeyMaker
from tests.routing.tables import CATCH_ALL, EXAMPLE_RULES, active_version, given, put_table


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
    # Unset conditions and the catch-all's missing team are left out, as they were written.
    assert second["rules"][1] == {"name": "rest", "when": {}, "tags": []}
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


def test_a_rule_naming_an_account_nobody_watches_is_refused(client: TestClient) -> None:
    rule = {"name": "typo", "when": {"accounts": ["TransNordRial"]}, "team": "hr", "priority": "P3"}

    response = client.put("/v1/routing/table", json={"rules": [rule, CATCH_ALL]})

    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"unknown_accounts": ["transnordrial"]}
    assert active_version(client) == 1


def test_a_probability_without_its_label_is_refused(client: TestClient) -> None:
    body = {"text": "late again", "account": COMPANY, "probability": 0.3}

    response = client.post("/v1/routing/explain", json=body)

    assert response.status_code == 422
    assert "give the label" in response.json()["error"]["details"][0]["msg"]
