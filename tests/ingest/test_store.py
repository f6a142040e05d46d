"""The set-based writes of new posts match what the one-by-one path of tickets writes."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, event, text, update

from app.config import Settings
from app.db import make_sessionmaker, utcnow
from app.teams.models import Team
from app.tickets import sla, workflow
from app.tickets.models import Ticket, TicketState
from tests.builders import CEO, DELAY_EN, PRESS_EN, PROBLEM_EN, mention
from tests.conftest import POSTGRES_URL, Db

SQLITE = not POSTGRES_URL


def test_tickets_opened_with_their_batch_have_the_deadlines_sla_schedule_gives(
    client: TestClient, engine: Engine
) -> None:
    batch = [
        mention("d1", DELAY_EN),
        mention("d2", PROBLEM_EN, account=CEO),
        mention("d3", PRESS_EN),
    ]
    items = client.post("/v1/mentions/batch", json={"mentions": batch}).json()["items"]

    with make_sessionmaker(engine)() as session:
        for item in items:
            ticket = session.get_one(Ticket, item["mention"]["routing"]["ticket_id"])
            written = _deadlines(session, ticket)
            due_at = ticket.due_at

            sla.schedule(session=session, ticket=ticket, team=session.get_one(Team, ticket.team_id))

            assert _deadlines(session, ticket) == written
            assert ticket.due_at == due_at
            assert len(written) == 2
        session.rollback()


def _deadlines(session: object, ticket: Ticket) -> dict[str, tuple[object, object]]:
    deadlines = sla.deadlines_of(session=session, ticket=ticket)  # type: ignore[arg-type]
    return {kind: (d.due_at, d.warn_at) for kind, d in deadlines.items()}


def test_stored_posts_are_found_by_source_and_the_plan_setting_does_not_outlive_the_look_up(
    client: TestClient, engine: Engine
) -> None:
    from app.ingest.models import Mention
    from app.ingest.store import CHUNK, stored_posts

    posted = [mention(f"s{i}", DELAY_EN) for i in range(3)] + [
        mention("c1", PRESS_EN, source="crm")
    ]
    client.post("/v1/mentions/batch", json={"mentions": posted})
    keys = {("api", f"s{i}") for i in range(CHUNK + 5)} | {("crm", "c1"), ("crm", "s0")}

    with make_sessionmaker(engine)() as session:
        if engine.dialect.name == "postgresql":  # a setting of the caller's is put back
            session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        found = stored_posts(session, keys, Mention.external_id)
        if engine.dialect.name == "postgresql":
            assert (
                session.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_generic_plan"
            )
        session.rollback()

    assert sorted(found) == [
        ("api", "s0", "s0"),
        ("api", "s1", "s1"),
        ("api", "s2", "s2"),
        ("crm", "c1", "c1"),
    ]


def test_a_failing_look_up_raises_its_own_error(engine: Engine) -> None:
    from sqlalchemy.exc import DBAPIError

    from app.ingest.store import stored_posts

    with make_sessionmaker(engine)() as session:
        with pytest.raises(DBAPIError) as raised:
            stored_posts(session, {("api", "x")}, text("no_such_column"))
        session.rollback()

    assert "no_such_column" in str(raised.value)


@pytest.mark.skipif(not SQLITE, reason="reads SQLite's query plans")
def test_ingest_and_the_sweep_find_tickets_through_indexes(
    client: TestClient, engine: Engine, statements: dict[str, Any]
) -> None:
    """A look-up that scans the tickets costs more with every ticket ever opened: the thread
    look-up of each group of new posts did, until it had an index."""
    client.post("/v1/mentions/batch", json={"mentions": [mention("b1", DELAY_EN)]})
    first = client.post("/v1/mentions", json=mention("s1", DELAY_EN, conversation_id="t"))
    with make_sessionmaker(engine)() as session, session.begin():  # its ticket, resolved
        ticket = session.get_one(Ticket, first.json()["routing"]["ticket_id"])
        ticket.state, ticket.resolved_at = TicketState.RESOLVED, utcnow()
    client.post("/v1/mentions", json=mention("s2", DELAY_EN, conversation_id="t"))  # reopens it
    client.post("/v1/mentions", json=mention("s3", DELAY_EN, conversation_id="t"))  # joins it
    with make_sessionmaker(engine)() as session, session.begin():
        workflow.sweep(session=session, now=utcnow())

    with engine.connect() as connection:
        plans = {
            sql: [
                row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            ]
            for sql, params in statements.items()
        }

    assert any("resolved_at >=" in sql for sql in plans)  # the reopening's look-up ran
    assert any("lease_expires_at <=" in sql for sql in plans)  # and the sweep's
    scans = {sql: plan for sql, plan in plans.items() if "SCAN tickets" in plan}
    assert scans == {}


@pytest.fixture
def statements() -> Iterator[dict[str, Any]]:
    """Each distinct statement that reads the tickets, in any engine (the application's own
    included), with its first parameters, until the end of the test."""
    with _captured(
        lambda sql: "FROM tickets" in sql and sql.lstrip().upper().startswith(("SELECT", "UPDATE"))
    ) as seen:
        yield seen


@contextmanager
def _captured(wanted: Callable[[str], bool]) -> Iterator[dict[str, Any]]:
    """Each distinct statement that `wanted` accepts, run by any engine within the block, with
    its first parameters."""
    seen: dict[str, Any] = {}

    def capture(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
        if wanted(sql):
            seen.setdefault(sql, params[0] if many else params)

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", capture)


def test_a_conflict_past_the_first_page_of_a_large_batch_leaves_nothing_half_written(
    client: TestClient, settings: Settings, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy sends more than 1,000 rows as several INSERTs; when one fails on a post
    another process stored meanwhile, the pages before it must be undone too (a savepoint),
    or their posts would be stored without classification, routing or ticket."""
    from app.classify.models import Classification
    from app.ingest import service
    from app.ingest.models import Mention

    monkeypatch.setattr(settings, "max_batch_items", 1_200)
    monkeypatch.setattr(settings, "max_body_bytes", 4_000_000)
    late = f"p{1_150:05d}"  # past the first 1,000 in key order
    client.post("/v1/mentions", json=mention(late, PRESS_EN, author={"handle": "early"}))
    real, calls = service._existing, []

    def blind_once(**kwargs: Any) -> Any:  # as if another process stored it after our look-up
        calls.append(1)
        return {} if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(service, "_existing", blind_once)
    batch = [mention(f"p{i:05d}", PRESS_EN, author={"handle": f"r{i}"}) for i in range(1_200)]

    answer = client.post("/v1/mentions/batch", json={"mentions": batch})

    assert answer.status_code == 200, answer.text
    assert (answer.json()["created"], answer.json()["duplicates"]) == (1_199, 1)
    assert db.count(Mention) == 1_200
    assert db.count(Classification) == 1_200


def test_new_tickets_take_their_team_s_terms_from_the_loaded_table(
    client: TestClient, engine: Engine
) -> None:
    """Reading and parsing the teams' rows cost a group more than computing its deadlines."""
    client.post("/v1/mentions/batch", json={"mentions": [mention("t1", DELAY_EN)]})
    with _captured(lambda sql: sql.lstrip().startswith("SELECT teams.")) as read:
        batch = [mention("t2", DELAY_EN), mention("t3", PRESS_EN)]
        items = client.post("/v1/mentions/batch", json={"mentions": batch}).json()["items"]

    assert [item["mention"]["routing"]["team"] for item in items] == [
        "customer-service",
        "communications",
    ]
    assert read == {}


def test_a_team_whose_hours_no_longer_parse_fails_its_own_posts_alone(
    client: TestClient, engine: Engine
) -> None:
    with engine.begin() as connection:  # as a hand edit or a bad restore could leave it
        connection.execute(
            update(Team)
            .where(Team.slug == "customer-service")
            .values(hours={"timezone": "Europe/Nowhere"}, updated_at=utcnow())
        )

    press = client.post("/v1/mentions", json=mention("p1", PRESS_EN))
    with pytest.raises(ValidationError):  # the test client raises what the server would log
        client.post("/v1/mentions", json=mention("d1", DELAY_EN))

    assert press.status_code == 201
    assert press.json()["routing"]["team"] == "communications"


def test_a_team_s_new_sla_applies_to_the_next_tickets_it_gets(
    client: TestClient, engine: Engine
) -> None:
    """The routing table, loaded once, holds the teams' terms: a change of a team is seen."""
    client.post("/v1/mentions/batch", json={"mentions": [mention("a1", PRESS_EN)]})
    targets = {f"P{n}": {"first_response_minutes": 7, "resolution_hours": 1} for n in range(1, 5)}
    team = {"name": "Communications", "sla": {"targets": targets}}
    assert client.put("/v1/teams/communications", json=team).status_code == 200

    batch = [mention("a2", PRESS_EN, author={"handle": "reporter"})]
    item = client.post("/v1/mentions/batch", json={"mentions": batch}).json()["items"][0]

    with make_sessionmaker(engine)() as session:
        ticket = session.get_one(Ticket, item["mention"]["routing"]["ticket_id"])
        first_response = _deadlines(session, ticket)["first_response"][0]
        assert first_response - ticket.opened_at == timedelta(minutes=7)
