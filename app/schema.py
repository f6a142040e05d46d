"""Apply the Alembic migrations shipped with the package to a database."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

import migrations

SCRIPT_LOCATION = Path(migrations.__file__).parent


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["configure_logging"] = False
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to a revision (the newest by default)."""
    _run(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, command.downgrade, revision)


def _run(engine: Engine, action: object, revision: str) -> None:
    config = alembic_config()
    with engine.connect() as connection, foreign_keys_deferred(connection), connection.begin():
        config.attributes["connection"] = connection
        action(config, revision)  # type: ignore[operator]
        check_foreign_keys(connection)


@contextmanager
def foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    """On SQLite, foreign keys off while migrating: a batch migration rebuilds a table by
    dropping it, which the referencing rows would refuse. PostgreSQL alters in place."""
    if connection.dialect.name != "sqlite":
        yield
        return
    # Outside any transaction, where SQLite honours the pragma.
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def check_foreign_keys(connection: Connection) -> None:
    """Refuse (and roll back) a migration that left a row pointing nowhere."""
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
