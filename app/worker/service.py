"""The background loop: jobs at their own cadence, each pass in transactions of its own.

`aiguilleur worker` runs it as a process; on the embedded default `serve` runs it in a thread, so
one command gives the whole service. Several workers may run at once: jobs claim their rows.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import utcnow
from app.delivery import sending
from app.tickets import workflow

if TYPE_CHECKING:  # the X jobs' modules load the model's code: only a worker with X needs them
    from app.x.polling import Models

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
X_REPLIES_INTERVAL = 1.0  # seconds: an agent's answer should reach the customer at once


def sweep_sla(*, sessions: sessionmaker[Session], now: datetime) -> workflow.Sweep:
    """SLA warnings, breaches and escalations, and expired claim leases."""
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


@dataclass
class Job:
    name: str
    interval: float
    run: Callable[[], object]
    due: float = 0.0


def jobs(
    *, sessions: sessionmaker[Session], settings: Settings, clock: Clock = utcnow
) -> list[Job]:
    """Deliveries often (a CRM waits for its ticket), SLA timers every few seconds."""
    return [
        Job(
            "deliveries",
            settings.delivery_interval_seconds,
            lambda: sending.run(sessions=sessions, settings=settings, clock=clock),
        ),
        Job(
            "sla",
            settings.worker_interval_seconds,
            lambda: sweep_sla(sessions=sessions, now=clock()),
        ),
    ]


def x_jobs(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock = utcnow,
    models: "Models | None",
) -> list[Job]:
    """With X credentials: replies every second, and the pollers (each account at its own
    interval). They wait on X, so they run in a loop of their own, beside the one of `jobs`.
    The pollers ingest, so they need `models`, which holds the classifier served."""
    from app.x import polling
    from app.x import sending as x_sending

    work = []
    if settings.x_reads and models is not None:
        work.append(
            Job(
                "x-poll",
                settings.worker_interval_seconds,
                lambda: polling.run(
                    sessions=sessions, settings=settings, models=models, clock=clock
                ),
            )
        )
    if settings.x_writes:
        work.append(
            Job(
                "x-replies",
                X_REPLIES_INTERVAL,
                lambda: x_sending.run(sessions=sessions, settings=settings, clock=clock),
            )
        )
    return work


def run_forever(*, work: list[Job], stop: threading.Event) -> None:
    """Each job when it is due, until `stop` is set; a failing pass is logged and retried."""
    while not stop.is_set():
        for job in work:
            if time.monotonic() >= job.due:
                busy = _run_safely(job)
                # A job that found work goes again at once: there may be more behind it.
                job.due = time.monotonic() + (0.0 if busy else job.interval)
        stop.wait(max(0.0, min(job.due for job in work) - time.monotonic()))


def _run_safely(job: Job) -> bool:
    """Run the job; whether it found work (a count above zero)."""
    try:
        done = job.run()
    except OperationalError as error:
        log.warning("%s pass failed, retrying: %s", job.name, type(error.orig).__name__)
        return False
    except Exception:
        log.exception("%s pass failed", job.name)
        return False
    return isinstance(done, int) and done > 0


def start_threads(
    *, sessions: sessionmaker[Session], settings: Settings, models: "Models | None" = None
) -> list[tuple[threading.Thread, threading.Event]]:
    """The loops in daemon threads, for `serve` on the embedded default: the main jobs, and
    the X jobs if X is configured."""
    loops = [
        ("aiguilleur-worker", jobs(sessions=sessions, settings=settings)),
        ("aiguilleur-x", x_jobs(sessions=sessions, settings=settings, models=models)),
    ]
    started = []
    for name, work in loops:
        if work:
            stop = threading.Event()
            thread = threading.Thread(
                target=run_forever, kwargs={"work": work, "stop": stop}, name=name, daemon=True
            )
            thread.start()
            started.append((thread, stop))
    return started
