"""Configuration files: validation with locations, upserts, and the `config apply` command."""

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from app.accounts.models import Account
from app.configuration import service as configuration
from app.db import make_sessionmaker
from app.errors import InvalidConfiguration
from app.routing.models import RoutingTable
from tests.cli import run_cli
from tests.conftest import EXAMPLE_CONFIG, Db
from tests.server import run_child_cli


def test_the_example_configuration_is_valid() -> None:
    config = configuration.read_file(EXAMPLE_CONFIG)

    assert {a.kind.value for a in config.accounts} == {"company", "executive"}
    assert config.routing is not None
    assert config.routing.rules[-1].when.is_catch_all()


def test_an_invalid_file_reports_where(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("accounts:\n  - handle: ok\n    kind: ceo\n    display_name: X\n")

    with pytest.raises(InvalidConfiguration) as caught:
        configuration.read_file(path)

    assert caught.value.details == [
        {"loc": ["accounts", 0, "kind"], "msg": "Input should be 'company' or 'executive'"}
    ]


def test_a_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("accounts: [unclosed\n")

    with pytest.raises(InvalidConfiguration, match="cannot read"):
        configuration.read_file(path)


def test_applying_twice_updates_in_place(engine: Engine, db: Db) -> None:
    config = configuration.read_file(EXAMPLE_CONFIG)
    for _ in range(2):
        with make_sessionmaker(engine)() as session, session.begin():
            applied = configuration.apply(session=session, config=config, source="test")

    assert (applied.accounts, applied.teams, applied.routing_version, applied.routing_changed) == (
        3,
        5,
        1,
        False,
    )
    assert db.count(Account) == 3
    assert db.count(RoutingTable) == 1


def test_the_config_apply_command(engine: Engine, database_url: str, db: Db) -> None:
    result = run_cli("config", "apply", str(EXAMPLE_CONFIG), database_url=database_url)

    assert result.returncode == 0, result.stderr
    assert "3 accounts, 5 teams, routing table version 1 (new)" in result.stdout
    assert {a.handle for a in db.scalars(select(Account))} == {
        "transnordrail",
        "transnordaide",
        "camilledurand_ceo",
    }


def test_the_config_apply_command_refuses_a_broken_table(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("routing:\n  rules:\n    - {name: only, when: {labels: [delay]}}\n")

    result = run_cli("config", "apply", str(path), database_url=database_url)

    assert result.returncode == 2
    assert "catch-all" in result.stderr


def test_an_invalid_setting_exits_2_with_a_message(database_url: str) -> None:
    """In a real process: what the interpreter would print for an unhandled error included."""
    result = run_child_cli(
        "migrate", database_url=database_url, AIGUILLEUR_CONFIDENCE_THRESHOLD="high"
    )

    assert result.returncode == 2
    assert "invalid AIGUILLEUR_* setting" in result.stderr
    assert "Traceback" not in result.stderr


def test_moving_an_x_user_id_onto_another_account_is_refused(
    engine: Engine, configured: None, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "steal.yaml"
    path.write_text(
        "accounts:\n  - {handle: CamilleDurand_CEO, kind: executive, display_name: C, "
        'x_user_id: "1500000000000000001"}\n'
    )

    result = run_cli("config", "apply", str(path), database_url=database_url)

    assert result.returncode == 2
    assert "another account has this X user id" in result.stderr


def test_a_file_that_fails_half_way_changes_nothing(engine: Engine, db: Db, tmp_path: Path) -> None:
    path = tmp_path / "half.yaml"
    path.write_text(
        "accounts:\n  - {handle: NewAccount, kind: company, display_name: New}\n"
        "routing:\n  rules:\n    - {name: all, team: no-such-team, priority: P1}\n"
    )

    with (
        pytest.raises(InvalidConfiguration, match="unknown teams"),
        make_sessionmaker(engine)() as session,
        session.begin(),
    ):
        configuration.apply(session=session, config=configuration.read_file(path), source="test")

    assert db.count(Account) == 0
