"""Engine, sessions and the declarative base shared by every domain's tables."""

import enum
import functools
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import orjson
from fastapi import Request
from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Enum,
    Index,
    MetaData,
    Table,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from app import inserts
from app.config import Settings

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _in_utc(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        """On SQLite, the text SQLAlchemy's DATETIME stores, made in one call: a batch binds a
        dozen timestamps a post, and the generic path (this class's conversion, then
        DATETIME's formatting) cost twice as much."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_utc_text

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in_utc(value: datetime) -> datetime:
    """The instant in UTC; a naive datetime is refused (which zone would it be in?)."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; give a timezone")
    return value.astimezone(UTC)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    """'YYYY-MM-DD HH:MM:SS.ffffff' in UTC, as SQLAlchemy's SQLite DATETIME writes it."""
    if value is None:
        return None
    return _utc_text(_in_utc(value))


@functools.lru_cache(maxsize=1024)
def _utc_text(value: datetime) -> str:
    # Remembered: a transaction binds its own instant about ten times a post (a post's rows'
    # times, its ticket's, its audit row's), and formatting one costs ten times a look-up.
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONType,
        list[str]: JSONType,
        list[Any]: JSONType,
    }


def text_enum(values: type[enum.StrEnum]) -> Enum:
    """A string enum stored as its values in a VARCHAR(16): portable, no database enum type."""
    return Enum(
        values, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def partial_unique_index(name: str, column: str, *, where: str) -> Index:
    """A unique index over the rows where `where` holds, the same on SQLite and PostgreSQL."""
    return Index(name, column, unique=True, sqlite_where=text(where), postgresql_where=text(where))


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """One executemany INSERT of rows (all with the same keys) that need nothing back, through
    the driver (see app/inserts.py): the ORM's bulk path, and even SQLAlchemy Core's, spend more
    per row than the insert itself. Pending ORM changes are flushed first."""
    inserts.insert_rows(session, table_of(model), rows)


def dump_json(value: Any) -> str:
    """JSON columns written through orjson, several times faster than json (a batch writes
    thousands: probabilities, payloads, tags); what orjson refuses (an integer past 64 bits)
    through json. They are read by json, which reads whatever either wrote, rows written
    before included (orjson refuses NaN, and reads a large integer as a float)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value)


SQLITE_POOL_SIZE = 40  # anyio's default number of worker threads


def make_engine(settings: Settings, *, background_checkpoints: bool = False) -> Engine:
    """An engine for the configured database; SQLite gets WAL, a busy timeout and write locks.

    `background_checkpoints`: the caller runs `app.checkpoints.start` on this engine, so its
    commits leave the write-ahead log to that thread (up to a safety limit)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            hide_parameters=True,
            json_serializer=dump_json,
        )
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a failed statement's parameters (post texts, raw payloads) stay out of logs.
    # A pool as large as the request thread pool: connections returned past the pool size are
    # closed, and reopening one (with its pragmas) under load costs more than the query.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False},
        hide_parameters=True,
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
        # The connection returned last is handed out first: a burst opens many connections,
        # and in turn each would grow a page cache of its own (2 MB); this way the few in use
        # stay warm and the others stay small.
        pool_use_lifo=True,
        json_serializer=dump_json,
    )
    background = background_checkpoints and settings.sqlite_checkpoint_seconds > 0
    autocheckpoint = BACKGROUND_AUTOCHECKPOINT_PAGES if background else SQLITE_AUTOCHECKPOINT_PAGES
    _configure_sqlite(engine, settings.sqlite_busy_timeout_ms, autocheckpoint)
    return engine


# The write-ahead log's size (in 4 KiB pages) past which the commit that grows it copies it back
# into the database: SQLite's default. Where a thread does it in the background, the commits
# only do it past ten times that, should that thread fall behind.
SQLITE_AUTOCHECKPOINT_PAGES = 1_000
BACKGROUND_AUTOCHECKPOINT_PAGES = 10_000


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, autocheckpoint_pages: int) -> None:
    # pysqlite opens transactions lazily and upgrades read locks to write locks mid-transaction,
    # which fails at once (SQLITE_BUSY) under concurrency instead of waiting. Writers take the
    # write lock at BEGIN so that they queue on the busy timeout; readers (marked read_only) begin
    # deferred, and in WAL mode never block a writer nor wait for one.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint_pages)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


READ_ONLY = "aiguilleur_read_only"


# How long a change (a model version, a routing table) waits for another change's lock. Changes
# take milliseconds: a longer wait means a transaction hangs while holding the lock, and every
# start and activation would otherwise hang behind it.
CHANGE_LOCK_WAIT_SECONDS = 30.0


def one_at_a_time(session: Session, lock: int) -> None:
    """Until this transaction ends, others asking for the same lock wait: a transaction-scoped
    advisory lock on PostgreSQL (asked again by its holder, it is granted at once). A wait past
    CHANGE_LOCK_WAIT_SECONDS fails with OperationalError (lock_timeout), as SQLite's busy timeout
    does; the transaction's own lock_timeout is put back once the lock is held. SQLite's writers
    queue on their write lock anyway."""
    if session.get_bind().dialect.name != "postgresql":
        return
    before = session.execute(select(func.current_setting("lock_timeout"))).scalar_one()
    timeout = f"{max(1, round(CHANGE_LOCK_WAIT_SECONDS * 1000))}ms"
    session.execute(select(func.set_config("lock_timeout", timeout, True)))
    session.execute(select(func.pg_advisory_xact_lock(lock)))
    session.execute(select(func.set_config("lock_timeout", before, True)))


def make_sessionmaker(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions for writing, or (read_only) for reading without taking SQLite's write lock."""
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def get_session(request: Request) -> Iterator[Session]:
    """The request's session for changes. Handlers commit before they answer (FastAPI may run
    this teardown after the response is sent, too late to report a failed commit); anything left
    uncommitted is rolled back here."""
    yield from _session_from(request.app.state.sessionmaker)


def get_read_session(request: Request) -> Iterator[Session]:
    """The request's session for reading only."""
    yield from _session_from(request.app.state.read_sessionmaker)


def _session_from(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session:
        try:
            yield session
        finally:
            session.rollback()


def in_transaction(
    settings: Settings, work: Callable[[Session], T], *, read_only: bool = False
) -> T:
    """Run work in one transaction on a short-lived engine (the command-line tools); read_only
    does not take SQLite's write lock."""
    engine = make_engine(settings)
    try:
        with make_sessionmaker(engine, read_only=read_only)() as session, session.begin():
            return work(session)
    finally:
        engine.dispose()
