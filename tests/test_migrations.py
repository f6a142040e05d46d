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
