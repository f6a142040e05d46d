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

from sqlalchemy import Engine

log = logging.getLogger(__name__)


def start(
    engine: Engine, *, every_seconds: float
) -> tuple[threading.Thread, threading.Event] | None:
    """The thread checkpointing this engine's SQLite file, and the event that stops it; None for
    another database, an in-memory one, or an interval of 0. Give the engine
    `background_checkpoints=True` (see `app.db.make_engine`)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if every_seconds <= 0:
        return None
    stop = threading.Event()
    thread = threading.Thread(
        target=_run,
        args=(url.database, bool(url.query.get("uri")), every_seconds, stop),
        name="aiguilleur-checkpoints",
        daemon=True,
    )
    thread.start()
    return thread, stop


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


def _run(path: str, uri: bool, every_seconds: float, stop: threading.Event) -> None:
    connection = sqlite3.connect(path, isolation_level=None, uri=uri)
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
