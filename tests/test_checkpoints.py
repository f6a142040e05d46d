"""SQLite's write-ahead log is copied back into the database by a thread, not by the commits."""

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from app import checkpoints, heap
from app.classify.service import Classifier
from app.config import Settings
from app.db import BACKGROUND_AUTOCHECKPOINT_PAGES, SQLITE_AUTOCHECKPOINT_PAGES, make_engine
from app.main import create_app


def sqlite_engine(path: Path, *, background: bool, every: float = 0.25) -> Engine:
    settings = Settings(  # type: ignore[call-arg]
        database_url=f"sqlite:///{path}", sqlite_checkpoint_seconds=every, _env_file=None
    )
    return make_engine(settings, background_checkpoints=background)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A SQLite file named by a relative path, the working directory changed since: the thread
    must checkpoint the engine's file, not one of the same name elsewhere."""
    monkeypatch.chdir(tmp_path)
    engine = sqlite_engine(Path("scratch.db"), background=True)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    yield engine
    engine.dispose()
    assert not (elsewhere / "scratch.db").exists()


def autocheckpoint(engine: Engine) -> int:
    with engine.connect() as connection:
        pages = int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())
    engine.dispose()
    return pages


def test_the_commits_leave_the_log_to_the_thread_up_to_a_safety_limit(tmp_path: Path) -> None:
    assert autocheckpoint(sqlite_engine(tmp_path / "a.db", background=True)) == (
        BACKGROUND_AUTOCHECKPOINT_PAGES
    )
    assert autocheckpoint(sqlite_engine(tmp_path / "b.db", background=False)) == (
        SQLITE_AUTOCHECKPOINT_PAGES
    )
    # An interval of 0 asks for no thread: the commits keep SQLite's own checkpoints.
    no_thread = sqlite_engine(tmp_path / "c.db", background=True, every=0)
    assert checkpoints.start(no_thread, every_seconds=0) is None
    assert autocheckpoint(no_thread) == SQLITE_AUTOCHECKPOINT_PAGES


def test_the_thread_copies_what_was_committed_into_the_database(
    scratch: Engine, tmp_path: Path
) -> None:
    database = tmp_path / "scratch.db"  # the engine's file, named relative to tmp_path
    with scratch.begin() as connection:
        connection.execute(
            text("INSERT INTO notes (body) VALUES (:body)"),
            [{"body": "x" * 1_000} for _ in range(500)],
        )
    before = database.stat().st_size  # the rows are in the log, not yet in the database

    with checkpoints.running(scratch, every_seconds=0.05):
        deadline = time.monotonic() + 10
        while database.stat().st_size <= before and time.monotonic() < deadline:
            time.sleep(0.05)

    assert database.stat().st_size > before + 400_000
    # Nothing is left to copy: a checkpoint now finds every page of the log copied already.
    with sqlite3.connect(database) as connection:
        busy, logged, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, copied) == (0, logged)


def test_a_failed_checkpoint_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    connection = sqlite3.connect(tmp_path / "closed.db")
    connection.close()

    assert checkpoints.checkpoint(connection) is None
    assert "checkpoint of the SQLite log failed" in caplog.text


def test_a_database_file_that_is_gone_is_not_created_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = tmp_path / "gone.db"

    checkpoints._run(f"{gone.as_uri()}?mode=rw", 60, threading.Event())  # returns at once

    assert not gone.exists()
    assert "cannot open the SQLite database to checkpoint it" in caplog.text


def test_no_thread_for_another_database_or_one_in_memory() -> None:
    postgres = make_engine(
        Settings(database_url="postgresql+psycopg://u@127.0.0.1:1/x", _env_file=None)  # type: ignore[call-arg]
    )
    memory = create_engine("sqlite://")

    assert checkpoints.start(postgres, every_seconds=0.25) is None
    assert checkpoints.start(memory, every_seconds=0.25) is None
    postgres.dispose()
    memory.dispose()


def test_a_start_that_fails_stops_the_threads_it_started(
    settings: Settings, engine: Engine, classifier: Classifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("the last step of the start fails")

    monkeypatch.setattr(heap, "settle", broken)
    before = set(threading.enumerate())

    with (
        pytest.raises(RuntimeError, match="last step"),
        TestClient(create_app(settings, classifier=classifier, with_worker=True)),
    ):
        pass

    left = [t.name for t in set(threading.enumerate()) - before if t.name.startswith("aiguilleur")]
    assert left == []
