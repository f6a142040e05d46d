"""Rows inserted through the driver are stored exactly as SQLAlchemy's own INSERT stores them."""

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from app.db import make_sessionmaker, table_of
from app.inserts import CompiledInsert, compile_insert, insert_rows
from app.outbox.models import OutboxEvent
from app.teams.models import Team
from app.tickets.models import Ticket, TicketState

PARIS_WINTER = timezone(timedelta(hours=1))


def team_rows(prefix: str) -> list[dict[str, Any]]:
    return [
        {"slug": f"{prefix}-ops", "name": "Opérations", "hours": None},
        {"slug": f"{prefix}-care", "name": "Service client", "hours": {"timezone": "Europe/Paris"}},
    ]


def raw(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params)]


def test_defaults_json_and_nulls_are_stored_as_sqlalchemy_stores_them(engine: Engine) -> None:
    table = table_of(Team)
    with make_sessionmaker(engine)() as session, session.begin():
        session.execute(insert(table), team_rows("core"))
        insert_rows(session, table, team_rows("fast"))

    columns = "name, members, hours, hours IS NULL, sla, created_at IS NOT NULL"
    query = f"SELECT {columns} FROM teams WHERE slug LIKE :prefix ORDER BY id"  # noqa: S608
    core = raw(engine, query, prefix="core-%")
    fast = raw(engine, query, prefix="fast-%")
    assert len(core) == 2
    assert fast == core


def test_timestamps_are_stored_in_utc_and_payloads_as_json(engine: Engine) -> None:
    at = datetime(2026, 11, 20, 8, 15, tzinfo=PARIS_WINTER)
    row = {
        "id": "evt_test",
        "type": "mention.routed",
        "subject_type": "mention",
        "subject_id": "1",
        "team_id": None,
        "payload": {"text": "Train supprimé à 8 h 15", "n": 1},
        "occurred_at": at,
    }
    with make_sessionmaker(engine)() as session, session.begin():
        insert_rows(session, table_of(OutboxEvent), [row])

    with make_sessionmaker(engine)() as session:
        event = session.scalars(select(OutboxEvent)).one()
    assert event.occurred_at == at
    assert event.occurred_at.tzinfo is not None
    assert event.payload == row["payload"]


def stored_values(keys: tuple[str, ...], row: dict[str, Any]) -> dict[str, Any]:
    compiled = compile_insert(sqlite.dialect(), table_of(Ticket), keys)
    [values] = compiled.parameters([row])
    return dict(zip(compiled.names, values, strict=True))


def test_a_column_left_out_gets_its_default_and_enums_their_values() -> None:
    given = stored_values(("team_id", "state"), {"team_id": 1, "state": TicketState.RESOLVED})
    left_out = stored_values(("team_id",), {"team_id": 1})

    assert given["state"] == "resolved"
    assert left_out["state"] == "open"
    assert left_out["tags"] == "[]"


def test_rows_with_other_columns_are_refused() -> None:
    compiled = compile_insert(sqlite.dialect(), table_of(Team), ("slug", "name"))
    with pytest.raises(ValueError, match="same columns"):
        compiled.parameters([{"slug": "a", "name": "A"}, {"slug": "b"}])
    with pytest.raises(ValueError, match="same columns"):  # as wide, but no name
        compiled.parameters([{"slug": "a", "name": "A"}, {"slug": "b", "members": []}])
    with pytest.raises(ValueError, match="has no columns"):
        compile_insert(sqlite.dialect(), table_of(Team), ("slug", "colour"))


def test_a_column_without_default_left_out_is_not_in_the_statement() -> None:
    compiled = compile_insert(sqlite.dialect(), table_of(Team), ("slug", "name"))
    assert "hours" not in compiled.names
    assert {"members", "sla", "created_at", "updated_at"} <= set(compiled.names)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.psycopg.dialect()])
def test_each_row_keeps_its_own_values_in_the_statements_order(dialect: Dialect) -> None:
    compiled = compile_insert(dialect, table_of(Team), ("slug", "name"))
    rows = [{"name": f"Team {i}", "slug": f"team-{i}"} for i in range(3)]

    parameters = compiled.parameters(rows)

    as_dicts = [
        p if isinstance(p, dict) else dict(zip(compiled.names, p, strict=True)) for p in parameters
    ]
    assert [(p["slug"], p["name"]) for p in as_dicts] == [(r["slug"], r["name"]) for r in rows]
    assert all(isinstance(p, tuple) == compiled.positional for p in parameters)
    assert compiled.parameters([]) == []


def test_rows_that_leave_every_column_to_the_database_are_each_still_a_row() -> None:
    compiled = CompiledInsert(sql="", names=(), processors=(), defaults={}, positional=True)

    assert compiled.parameters([{}, {}]) == [(), ()]
