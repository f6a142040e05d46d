"""The Alembic migrations: up to head, down to base, up again, and in step with the models."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, make_url, text

from app import schema
from app.config import Settings
from app.db import Base, make_engine
from app.models import import_all
from tests.conftest import POSTGRES_URL

TABLES = {
    "accounts",
    "teams",
    "mentions",
    "classifications",
    "routing_tables",
    "routing_rules",
    "routing_decisions",
    "tickets",
    "ticket_events",
    "outbox_events",
    "api_keys",
    "ticket_deadlines",
    "model_versions",
    "model_activations",
    "label_corrections",
    "webhook_endpoints",
    "x_checkpoints",
    "x_replies",
    "deliveries",
    "delivery_attempts",
    "inbound_webhooks",
}


@pytest.fixture
def scratch_engine(tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, so that downgrading does not touch the suite's database."""
    if not POSTGRES_URL:
        engine = make_engine(
            Settings(database_url=f"sqlite:///{tmp_path / 'migrations.db'}", _env_file=None)
        )  # type: ignore[call-arg]
        yield engine
        engine.dispose()
        return
    name = f"aiguilleur_migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(
        Settings(
            database_url=make_url(POSTGRES_URL).set(database=name).render_as_string(False),
            _env_file=None,
        )
    )  # type: ignore[call-arg]
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(scratch_engine: Engine) -> None:
    schema.upgrade(scratch_engine)
    assert tables(scratch_engine) == TABLES
    assert schema.current(scratch_engine) == schema.head()

    schema.downgrade(scratch_engine, "base")
    assert tables(scratch_engine) == set()
    assert schema.current(scratch_engine) is None

    schema.upgrade(scratch_engine)
    assert tables(scratch_engine) == TABLES


def test_the_migrations_match_the_models(scratch_engine: Engine) -> None:
    schema.upgrade(scratch_engine)
    import_all()
    with scratch_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_a_database_with_tickets_migrates_up_and_down(scratch_engine: Engine) -> None:
    """Rows made by the first schema survive the later revisions, and open tickets get
    deadlines (SQLite rebuilds tables in batch mode, with foreign keys pointing at them)."""
    schema.upgrade(scratch_engine, FIRST_REVISION)
    with scratch_engine.begin() as connection:
        for statement in FIRST_SCHEMA_ROWS:
            connection.execute(text(statement))

    schema.upgrade(scratch_engine)

    with scratch_engine.connect() as connection:
        deadlines = connection.execute(
            text("SELECT kind, due_at FROM ticket_deadlines ORDER BY kind")
        ).all()
        ticket = connection.execute(text("SELECT due_at, breached FROM tickets")).one()
    assert [kind for kind, _ in deadlines] == ["first_response", "resolution"]
    assert str(ticket.due_at).startswith("2026-11-20 10:00")  # P2: opened 08:00 + 120 min
    assert not ticket.breached
    schema.downgrade(scratch_engine, FIRST_REVISION)
    schema.upgrade(scratch_engine)
    with scratch_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM mentions")).scalar() == 1


FIRST_REVISION = "ecec588748ab"
FIRST_SCHEMA_ROWS = [
    "INSERT INTO accounts (id, handle, kind, display_name, created_at, updated_at) "
    "VALUES (1, 'transnordrail', 'company', 'TransNord', '2026-11-20 08:00:00+00', "
    "'2026-11-20 08:00:00+00')",
    "INSERT INTO teams (id, slug, name, created_at) "
    "VALUES (1, 'customer-service', 'CS', '2026-11-20 08:00:00+00')",
    "INSERT INTO mentions (id, source, external_id, account_id, author_handle, text, posted_at, "
    "received_at, conversation_root, conversation_key) VALUES (1, 'api', '1', 1, 'rider', "
    "'late again', '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00', '1', 'api:1:rider')",
    "INSERT INTO tickets (id, team_id, conversation_key, state, priority, label, account_id, "
    "first_mention_id, opened_at, updated_at) VALUES (1, 1, 'api:1:rider', 'open', 'P2', "
    "'delay', 1, 1, '2026-11-20 08:00:00+00', '2026-11-20 08:00:00+00')",
]


def test_a_database_with_two_active_models_keeps_the_one_activated_last(
    scratch_engine: Engine,
) -> None:
    """Before registrations and activations took a lock, two at once could leave both active."""
    schema.upgrade(scratch_engine, "5b1e2c7d9a40")
    with scratch_engine.begin() as connection:
        for version, activated in (
            ("m-old", "2026-12-01 08:00:00"),
            ("m-new", "2026-12-02 08:00:00"),
        ):
            connection.execute(
                text(
                    "INSERT INTO model_versions (version, path, details, metrics, active, "
                    "created_at, activated_at) VALUES (:v, 'builtin', '{}', '{}', :t, :a, :a)"
                ),
                {"v": version, "t": True, "a": activated},
            )

    schema.upgrade(scratch_engine)

    with scratch_engine.connect() as connection:
        active = connection.execute(text("SELECT version FROM model_versions WHERE active")).all()
    assert [row.version for row in active] == ["m-new"]
