"""`aiguilleur worker [--once]`: the background loop as a process of its own."""

import argparse
import signal
import threading

from app.config import Settings
from app.db import make_engine, make_sessionmaker, utcnow
from app.delivery import sending
from app.worker import service as worker


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "worker", help="run the background jobs (webhook deliveries, SLA timers, leases)"
    )
    parser.add_argument("--once", action="store_true", help="run one pass and exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    try:
        if args.once:
            sent = sending.run(sessions=sessions, settings=settings)
            swept = worker.sweep_sla(sessions=sessions, now=utcnow())
            print(
                f"{sent} deliveries attempted; {swept.warnings} warnings, {swept.breaches} "
                f"breaches, {swept.leases_released} leases released"
            )
            return 0
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        worker.run_forever(work=worker.jobs(sessions=sessions, settings=settings), stop=stop)
        return 0
    finally:
        engine.dispose()
