"""`aiguilleur routes validate|apply FILE` against the test database."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.cli import run_cli
from tests.conftest import EXAMPLE_CONFIG

TABLE_YAML = """\
rules:
  - name: strikes
    when: {keywords: [grève, strike], languages: [fr, en]}
    team: communications
    priority: P1
    tags: [strike]
  - name: rest
"""


def versions(client: TestClient) -> list[tuple[int, bool]]:
    return [(v["version"], v["active"]) for v in client.get("/v1/routing/versions").json()]


def test_validate_accepts_a_good_file_and_stores_nothing(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    table = tmp_path / "routes.yaml"
    table.write_text(TABLE_YAML, encoding="utf-8")

    result = run_cli("routes", "validate", str(table), database_url=database_url)

    assert result.returncode == 0, result.stderr
    assert f"{table}: valid, 2 rules, checksum " in result.stdout
    assert versions(client) == [(1, True)]


@pytest.mark.parametrize(
    ("content", "reasons"),
    [
        ("rules:\n  - name: a\n    when: {labels: [press]}\n", ["last rule must be a catch-all"]),
        (
            "rules:\n  - name: a\n    when: {regex: '(a'}\n  - name: a\n",
            ["not valid for RE2", "'when', 'regex'"],
        ),
        ("rules: [name: a\n", ["cannot read"]),
    ],
    ids=["no-catch-all", "bad-regex", "not-yaml"],
)
def test_validate_refuses_a_broken_file_with_its_reasons(
    client: TestClient, database_url: str, tmp_path: Path, content: str, reasons: list[str]
) -> None:
    table = tmp_path / "routes.yaml"
    table.write_text(content, encoding="utf-8")

    result = run_cli("routes", "validate", str(table), database_url=database_url)

    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    for reason in reasons:
        assert reason in result.stderr
    assert result.stdout == ""
    assert versions(client) == [(1, True)]


def test_validate_refuses_a_team_missing_from_the_database(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    table = tmp_path / "routes.json"
    rules = [{"name": "a", "team": "night-shift", "priority": "P1"}, {"name": "rest"}]
    table.write_text(json.dumps({"rules": rules}), encoding="utf-8")

    result = run_cli("routes", "validate", str(table), database_url=database_url)

    assert result.returncode == 2
    assert "error: the routing table sends to unknown teams: night-shift" in result.stderr
    assert versions(client) == [(1, True)]


def test_apply_makes_a_new_active_version_then_says_unchanged(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    table = tmp_path / "routes.yaml"
    table.write_text(TABLE_YAML, encoding="utf-8")

    first = run_cli("routes", "apply", str(table), database_url=database_url)
    again = run_cli("routes", "apply", str(table), database_url=database_url)

    assert first.returncode == 0, first.stderr
    assert first.stdout == "routing table version 2 (new, active)\n"
    assert again.stdout == "routing table version 2 (unchanged: it is the active table)\n"
    active = client.get("/v1/routing/table").json()
    assert (active["version"], active["source"]) == (2, f"cli:{table}")
    assert [rule["name"] for rule in active["rules"]] == ["strikes", "rest"]
    assert versions(client) == [(2, True), (1, False)]
    explanation = client.post(
        "/v1/routing/explain",
        json={"text": "GREVE demain", "account": "TransNordRail", "label": "other", "lang": "fr"},
    ).json()["explanation"]
    assert (explanation["rule"], explanation["tags"]) == ("strikes", ["strike"])


def test_a_whole_configuration_file_is_read_for_its_routing_section(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "aiguilleur.yaml"
    config.write_text(
        "accounts: []\nteams: [{slug: ghosts, name: Ghosts}]\nrouting:\n"
        + TABLE_YAML.replace("rules:", "  rules:").replace("\n  ", "\n    "),
        encoding="utf-8",
    )

    example = run_cli("routes", "validate", str(EXAMPLE_CONFIG), database_url=database_url)
    same = run_cli("routes", "apply", str(EXAMPLE_CONFIG), database_url=database_url)
    applied = run_cli("routes", "apply", str(config), database_url=database_url)

    assert example.returncode == 0, example.stderr
    assert ": valid, 13 rules, checksum " in example.stdout
    assert same.stdout == "routing table version 1 (unchanged: it is the active table)\n"
    assert applied.stdout == "routing table version 2 (new, active)\n", applied.stderr
    assert client.get("/v1/routing/table").json()["rules"][0]["name"] == "strikes"
    assert "ghosts" not in [team["slug"] for team in client.get("/v1/teams").json()]
