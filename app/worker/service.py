"""The background loop: each pass runs every job in its own transaction, then sleeps.

`aiguilleur worker` runs it as a process; on the embedded default `serve` runs it in a thread, so
one command gives the whole service. Several workers may run at once: jobs claim their rows.
"""

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.tickets import workflow

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def run_once(*, sessions: sessionmaker[Session], now: datetime) -> workflow.Sweep:
    """One pass of every job; each commits on its own."""
    with sessions() as session, session.begin():
        swept = workflow.sweep(session=session, now=now)
    if swept.warnings or swept.breaches or swept.leases_released:
        log.info(
            "sla: %d warnings, %d breaches, %d leases released",
            swept.warnings,
            swept.breaches,
            swept.leases_released,
        )
    return swept


def run_forever(
    *,
    sessions: sessionmaker[Session],
    interval: float,
    stop: threading.Event,
    clock: Clock = utcnow,
) -> None:
    """Pass after pass until `stop` is set; a database outage is logged and retried."""
    while not stop.is_set():
        try:
            run_once(sessions=sessions, now=clock())
        except OperationalError as error:
            log.warning("worker pass failed, retrying: %s", type(error.orig).__name__)
        except Exception:
            log.exception("worker pass failed")
        stop.wait(interval)


def start_thread(
    *, sessions: sessionmaker[Session], interval: float
) -> tuple[threading.Thread, threading.Event]:
    """The loop in a daemon thread, for `serve` on the embedded default."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever,
        kwargs={"sessions": sessions, "interval": interval, "stop": stop},
        name="aiguilleur-worker",
        daemon=True,
    )
    thread.start()
    return thread, stop
