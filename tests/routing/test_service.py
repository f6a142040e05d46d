"""Routing tables in the database: versions, checksums, unknown teams, recorded decisions."""

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, delete, select, update

from app.configuration import service as configuration
from app.db import make_sessionmaker
from app.errors import InvalidConfiguration, NoRoutingTable
from app.routing import service as routing
from app.routing.models import RoutingTable
from app.routing.rules import MentionFacts
from app.routing.schemas import TableSpec
from app.teams.models import Team
from tests.conftest import EXAMPLE_CONFIG, Db

TABLE = {
    "rules": [
        {
            "name": "delay",
            "when": {"labels": ["delay"]},
            "team": "customer-service",
            "priority": "P2",
        },
        {"name": "rest"},
    ]
}


def apply(engine: Engine, spec: dict[str, object]) -> tuple[int, bool]:
    with make_sessionmaker(engine)() as session, session.begin():
        table, changed = routing.apply_table(
            session=session, spec=TableSpec.model_validate(spec), source="test"
        )
        return table.version, changed


def loaded(engine: Engine) -> routing.LoadedTable:
    """The active table as a new session sees it (through the per-database cache)."""
    with make_sessionmaker(engine)() as session:
        return routing.active_table(session=session)


def test_a_changed_table_is_a_new_version_and_the_same_one_is_not(
    engine: Engine, configured: None, db: Db
) -> None:
    assert apply(engine, TABLE) == (2, True)
    assert apply(engine, TABLE) == (2, False)
    changed = {"rules": [{**TABLE["rules"][0], "priority": "P1"}, TABLE["rules"][1]]}  # type: ignore[index]
    assert apply(engine, changed) == (3, True)

    versions = db.scalars(select(RoutingTable.version).where(RoutingTable.active))
    assert versions == [3]
    assert len(db.scalars(select(RoutingTable))) == 3


def test_a_table_that_names_an_unknown_team_is_refused_and_the_active_one_stays(
    engine: Engine, configured: None, db: Db
) -> None:
    broken = {"rules": [{"name": "x", "team": "nobody", "priority": "P1"}]}

    with pytest.raises(InvalidConfiguration, match="unknown teams: nobody"):
        apply(engine, broken)

    assert db.scalars(select(RoutingTable.version).where(RoutingTable.active)) == [1]


def test_route_gives_rule_team_and_version(engine: Engine, configured: None) -> None:
    with make_sessionmaker(engine)() as session:
        table = routing.active_table(session=session)
    facts = MentionFacts(
        label="press",
        probability=0.8,
        triage=False,
        account_handle="camilledurand_ceo",
        account_kind="executive",
        lang="en",
    )

    route = routing.route(table, facts)

    assert (route.rule_name, route.team, route.priority, route.table_version) == (
        "press-to-ceo",
        "communications",
        "P1",
        1,
    )


def test_without_a_routing_table_nothing_can_be_routed(engine: Engine) -> None:
    with (
        make_sessionmaker(engine)() as session,
        pytest.raises(NoRoutingTable, match="no routing table"),
    ):
        routing.active_table(session=session)


def test_defaults_are_installed_only_on_an_empty_database(engine: Engine, db: Db) -> None:
    with make_sessionmaker(engine)() as session, session.begin():
        first = configuration.apply_defaults_if_empty(session=session)
    with make_sessionmaker(engine)() as session, session.begin():
        second = configuration.apply_defaults_if_empty(session=session)

    assert first is not None
    assert first.routing_version == 1
    assert second is None
    assert EXAMPLE_CONFIG.exists()


def test_two_tables_applied_at_once_become_two_versions(engine: Engine, configured: None) -> None:
    sessions = make_sessionmaker(engine)
    first = TableSpec.model_validate({"rules": [{"name": "first"}]})
    second = TableSpec.model_validate({"rules": [{"name": "second"}]})
    outcome: list[object] = []

    def apply_second() -> None:
        try:
            with sessions() as session, session.begin():
                outcome.append(
                    routing.apply_table(session=session, spec=second, source="b")[0].version
                )
        except Exception as error:
            outcome.append(error)

    with sessions() as session:
        table, _ = routing.apply_table(session=session, spec=first, source="a")
        thread = threading.Thread(target=apply_second)
        thread.start()
        time.sleep(0.5)  # the second is now waiting for the first
        session.commit()
    thread.join(timeout=30)

    assert (table.version, outcome) == (2, [3])


def test_the_active_table_is_loaded_again_only_when_it_or_a_team_changes(
    engine: Engine, configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[int | None] = []
    real = routing.load_table

    def counted(**kwargs: object) -> routing.LoadedTable:
        loads.append(kwargs["version"])  # type: ignore[arg-type]
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(routing, "load_table", counted)

    first, again = loaded(engine), loaded(engine)
    assert again is first
    assert len(loads) == 1

    apply(engine, TABLE)
    assert loaded(engine).version == first.version + 1
    assert len(loads) == 2

    with make_sessionmaker(engine)() as session, session.begin():
        team = session.scalars(select(Team).where(Team.slug == "customer-service")).one()
        team.hours = {"timezone": "Europe/Paris", "days": {"mon": [["08:00", "18:00"]]}}
    changed = loaded(engine)
    assert len(loads) == 3
    assert "customer-service" in changed.team_ids
    assert loaded(engine) is changed


def test_a_team_change_stamped_earlier_than_one_already_seen_still_reloads_the_table(
    engine: Engine, configured: None
) -> None:
    """Another process may commit a change whose time is older than the newest one seen."""

    def set_team(slug: str, hours: dict[str, object] | None, at: datetime) -> None:
        with make_sessionmaker(engine)() as session, session.begin():
            session.execute(
                update(Team).where(Team.slug == slug).values(hours=hours, updated_at=at)
            )

    paris = {"timezone": "Europe/Paris", "days": {"mon": [["08:00", "18:00"]]}}
    set_team("customer-service", None, datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    set_team("operations", None, datetime(2026, 1, 1, 13, 0, tzinfo=UTC))
    before = loaded(engine)

    set_team("customer-service", paris, datetime(2026, 1, 1, 12, 30, tzinfo=UTC))
    after = loaded(engine)

    assert after is not before
    assert loaded(engine) is after


def test_a_table_stored_again_under_a_deleted_one_s_version_is_loaded(
    engine: Engine, configured: None
) -> None:
    """Tables deleted by hand (a restore, a clean-up), then another applied: same version."""

    before = loaded(engine)
    with make_sessionmaker(engine)() as session, session.begin():
        session.execute(delete(RoutingTable))
    apply(engine, TABLE)  # version 1 again; on SQLite, row id 1 again too

    after = loaded(engine)

    assert after.version == before.version
    assert [rule.name for rule in after.rules] == ["delay", "rest"]
