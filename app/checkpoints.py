"""SQLite's write-ahead log, copied back into the database by a thread of its own.

In WAL mode each commit appends the pages it changed to the log, and the commit that takes the
log past 1,000 pages copies the whole log back into the database first (a checkpoint). Under
load that was one group of posts in seven, whose commit took 8 to 10 ms instead of 1 (every
answer of the group waited for it), and every commit of a batch of 1,000. Here a thread does it
every `sqlite_checkpoint_seconds`, on its own connection: SQLite runs a checkpoint beside the
readers and the writer, and without Python's lock, so on a machine with two cores the writes go
on meanwhile. A `PASSIVE` checkpoint copies what no reader still needs and never waits; the
commits still checkpoint past ten times the usual size, should this thread fall behind.
"""

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

log = logging.getLogger(__name__)


def start(
    engine: Engine, *, every_seconds: float
) -> tuple[threading.Thread, threading.Event] | None:
    """The thread checkpointing this engine's SQLite file, and the event that stops it; None for
    another database, an in-memory one, or an interval of 0. Give the engine
    `background_checkpoints=True` (see `app.db.make_engine`)."""
    if engine.url.get_backend_name() != "sqlite" or every_seconds <= 0:
        return None
    target = _target(engine)
    if target is None:
        return None
    stop = threading.Event()
    thread = threading.Thread(
        target=_run, args=(target, every_seconds, stop), name="aiguilleur-checkpoints", daemon=True
    )
    thread.start()
    return thread, stop


def _target(engine: Engine) -> str | None:
    """The file the engine's connections use (SQLite says which: a relative name was resolved
    when the engine was made, whatever the working directory is now), as a URI that opens it
    read-write and never creates it; None for a database in memory."""
    connection = engine.raw_connection()
    try:
        files = {name: file for _, name, file in connection.execute("PRAGMA database_list")}
    finally:
        connection.close()
    file = files.get("main")
    return f"{Path(file).as_uri()}?mode=rw" if file else None


@contextmanager
def running(engine: Engine, *, every_seconds: float) -> Iterator[None]:
    """`start` for the duration of the block; the thread's last checkpoint is done when it ends."""
    started = start(engine, every_seconds=every_seconds)
    try:
        yield
    finally:
        if started is not None:
            thread, stop = started
            stop.set()
            thread.join()


def _run(target: str, every_seconds: float, stop: threading.Event) -> None:
    try:
        connection = sqlite3.connect(target, uri=True, isolation_level=None)
    except sqlite3.Error:
        log.exception("cannot open the SQLite database to checkpoint it; the commits will")
        return
    try:
        while not stop.wait(every_seconds):
            checkpoint(connection)
        checkpoint(connection)  # what the last commits wrote, before the process ends
    finally:
        connection.close()


def checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int] | None:
    """One passive checkpoint: (busy, pages in the log, pages copied), or None if it failed
    (logged: the next one tries again, and the commits' own checkpoints remain)."""
    try:
        busy, logged, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error as error:
        log.warning("checkpoint of the SQLite log failed: %s", error)
        return None
    return busy, logged, copied
