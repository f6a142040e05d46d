"""Helpers of the routing API tests: put a table, explain a mention, read versions."""

from typing import Any

from fastapi.testclient import TestClient

from tests.builders import COMPANY

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
