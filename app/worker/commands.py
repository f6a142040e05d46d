"""`aiguilleur worker [--once]`: the background loop as a process of its own."""

import argparse
import signal
import threading
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import make_engine, make_sessionmaker, utcnow
from app.delivery import sending
from app.worker import service as worker

if TYPE_CHECKING:  # the model's code loads in seconds: every `aiguilleur` command imports this
    from app.classify.service import Classifier


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "worker", help="run the background jobs (webhook deliveries, SLA timers, leases)"
    )
    parser.add_argument("--once", action="store_true", help="run one pass and exit")
    parser.set_defaults(handler=run)


class Serving:
    """The classifier this worker ingests X's posts with: the active model version, followed."""

    def __init__(self, classifier: "Classifier") -> None:
        self.classifier = classifier


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    stop = threading.Event()
    try:
        models = _models(sessions=sessions, settings=settings, stop=stop)
        if args.once:
            return _once(sessions=sessions, settings=settings, models=models)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        x_work = worker.x_jobs(sessions=sessions, settings=settings, models=models)
        if x_work:  # X's calls may wait: they must not hold up deliveries and SLA timers
            x_loop = threading.Thread(
                target=worker.run_forever, kwargs={"work": x_work, "stop": stop}, name="x"
            )
            x_loop.start()
        worker.run_forever(work=worker.jobs(sessions=sessions, settings=settings), stop=stop)
        if x_work:
            x_loop.join()
        return 0
    finally:
        stop.set()
        engine.dispose()


def _models(
    *, sessions: sessionmaker[Session], settings: Settings, stop: threading.Event
) -> Serving | None:
    """Only the X pollers ingest in a worker: without them no model is loaded (memory)."""
    return following(sessions=sessions, settings=settings, stop=stop) if settings.x_reads else None


def following(
    *, sessions: sessionmaker[Session], settings: Settings, stop: threading.Event
) -> Serving:
    """The active model, and a thread that swaps it when another version is activated."""
    from app.classify import serving

    models = Serving(serving.at_start(sessions=sessions, settings=settings, given=None))
    thread = threading.Thread(
        target=serving.follow_active,
        kwargs={"state": models, "sessions": sessions, "settings": settings, "stop": stop},
        name="aiguilleur-model",
        daemon=True,
    )
    thread.start()
    return models


def _once(*, sessions: sessionmaker[Session], settings: Settings, models: Serving | None) -> int:
    """Each job once, in order: X's posts in, deliveries and replies out, SLA timers."""
    from app.x import polling
    from app.x import sending as x_sending

    pages = polling.run(sessions=sessions, settings=settings, models=models) if models else 0
    sent = sending.run(sessions=sessions, settings=settings)
    answered = x_sending.run(sessions=sessions, settings=settings) if settings.x_writes else 0
    swept = worker.sweep_sla(sessions=sessions, now=utcnow())
    print(
        f"{pages} pages read from X; {sent} deliveries attempted; {answered} replies attempted; "
        f"{swept.warnings} warnings, {swept.breaches} breaches, "
        f"{swept.leases_released} leases released"
    )
    return 0
