"""Fixtures: a migrated database (SQLite, or PostgreSQL from AIGUILLEUR_TEST_DATABASE_URL), the
shipped model loaded once, and an app configured with the example accounts, teams and routes."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, Executable, create_engine, func, make_url, select, text

from app import schema
from app.access import service as access
from app.access.schemas import KeyCreate
from app.classify.service import Classifier
from app.config import PACKAGED_MODEL_PATH, Settings
from app.configuration import service as configuration
from app.configuration.schemas import ConfigFile
from app.db import Base, make_engine, make_sessionmaker
from app.main import create_app
from app.models import import_all
from ml.model import TextClassifier

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = ROOT / "config" / "aiguilleur.example.yaml"
SHARED_DATA = ROOT.parent / "shared" / "data"
POSTGRES_URL = os.environ.get("AIGUILLEUR_TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite in this session's temporary directory (one per xdist worker), or PostgreSQL: the
    given database, or under xdist a database of the worker's own on the same server."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'aiguilleur.db'}"
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        yield POSTGRES_URL
        return
    given = make_url(POSTGRES_URL)
    name = f"{given.database}_{worker}"  # test_gw0, test_gw1, ...
    server = create_engine(given, isolation_level="AUTOCOMMIT")
    drop = text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    try:
        with server.connect() as connection:
            connection.execute(drop)  # what an interrupted run left
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield given.set(database=name).render_as_string(hide_password=False)
        with server.connect() as connection:
            connection.execute(drop)
    finally:
        server.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """The test database, emptied and migrated to head once for the whole session."""
    engine = make_engine(settings)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    schema.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def model() -> TextClassifier:
    return TextClassifier.load(PACKAGED_MODEL_PATH)


@pytest.fixture
def classifier(model: TextClassifier, settings: Settings) -> Classifier:
    return Classifier(model, threshold=settings.confidence_threshold, margin=settings.triage_margin)


class Db:
    """Reads the test database, each call in its own short read-only transaction (a long one
    would keep an old snapshot on SQLite and miss what later requests commit)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = make_sessionmaker(engine, read_only=True)

    def scalars(self, statement: Executable) -> list[Any]:
        with self._sessions() as session:
            return list(session.scalars(statement).all())

    def rows(self, statement: Executable) -> list[Any]:
        with self._sessions() as session:
            return list(session.execute(statement).all())

    def one(self, statement: Executable) -> Any:
        [row] = self.scalars(statement)
        return row

    def count(self, model: type) -> int:
        return int(self.one(select(func.count()).select_from(model)))


@pytest.fixture
def db(engine: Engine) -> Db:
    return Db(engine)


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Requests commit for real (as in production), so each test leaves the tables empty."""
    yield
    if "engine" not in request.fixturenames:
        return
    engine: Engine = request.getfixturevalue("engine")
    import_all()
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(scope="session")
def example_config() -> Iterator[ConfigFile]:
    """The example file, read and validated once: applying it must not change it."""
    config = configuration.read_file(EXAMPLE_CONFIG)
    yield config
    assert config == configuration.read_file(EXAMPLE_CONFIG), "a test changed the shared config"


@pytest.fixture
def configured(engine: Engine, example_config: ConfigFile) -> None:
    """The example configuration: a company account, its CEO's, five teams, the routing table."""
    with make_sessionmaker(engine)() as session, session.begin():
        configuration.apply(session=session, config=example_config, source="test")


@pytest.fixture
def app(settings: Settings, engine: Engine, classifier: Classifier, configured: None) -> FastAPI:
    return create_app(settings, classifier=classifier, with_worker=False)


KeyMaker = Callable[..., dict[str, str]]


@pytest.fixture
def make_key(engine: Engine) -> KeyMaker:
    """Headers carrying a new API key with these scopes."""

    def make(*scopes: str, name: str = "test") -> dict[str, str]:
        with make_sessionmaker(engine)() as session, session.begin():
            _, token = access.create(
                session=session, key_in=KeyCreate(name=name, scopes=list(scopes))
            )
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def client(app: FastAPI, make_key: KeyMaker) -> Iterator[TestClient]:
    """A client with an admin key; tests of access use `anonymous` and `make_key`."""
    with TestClient(app, headers=make_key("admin", name="admin")) as client:
        yield client


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client
