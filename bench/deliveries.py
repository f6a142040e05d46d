"""Webhook delivery throughput and latency against a local receiver.

Usage: python bench/deliveries.py [--database-url URL] [--workers 4] [--events 3000]
Without a URL it uses a fresh SQLite file. With a PostgreSQL URL, the database is emptied first:
give it one of its own. Prints figures; it asserts nothing.

- throughput: `--workers` `aiguilleur worker` processes running, `--events` events committed at
  once, time until the receiver has them all;
- latency: one idle worker; events committed one by one; time from each commit to its arrival.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from app import schema
from app.config import Settings
from app.configuration import service as configuration
from app.db import make_engine, make_sessionmaker
from app.delivery import service
from app.outbox import service as outbox
from app.teams import service as teams
from tests.delivery.receiver import Receiver, running_receiver

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "aiguilleur.example.yaml"


def prepare(url: str, receiver: Receiver) -> Settings:
    settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
    engine = make_engine(settings)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    schema.upgrade(engine)
    with make_sessionmaker(engine)() as session, session.begin():
        configuration.apply(session=session, config=configuration.read_file(EXAMPLE), source="b")
        team = teams.get(session=session, slug="customer-service")
        service.create_endpoint(
            session=session, team=team, url=receiver.url, event_types=[], enabled=True
        )
    engine.dispose()
    return settings


def add_events(settings: Settings, count: int) -> None:
    engine = make_engine(settings)
    with make_sessionmaker(engine)() as session, session.begin():
        team = teams.get(session=session, slug="customer-service")
        for i in range(count):
            outbox.record(
                session=session,
                type="ticket.updated",
                subject_type="ticket",
                subject_id=str(i),
                team_id=team.id,
                data={"n": i, "note": "x" * 200},
            )
    engine.dispose()


def start_workers(url: str, count: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "AIGUILLEUR_DATABASE_URL": url,
        "AIGUILLEUR_WEBHOOKS_ALLOW_LOOPBACK": "true",
        "AIGUILLEUR_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "app.cli", "worker"]
    # Our own CLI, with the interpreter running this script.
    return [subprocess.Popen(command, cwd=ROOT, env=env) for _ in range(count)]  # noqa: S603


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


def throughput(url: str, workers: int, events: int) -> None:
    with running_receiver() as receiver:
        settings = prepare(url, receiver)
        processes = start_workers(url, workers)
        add_events(settings, 1)  # once it has arrived, the workers are up
        while len(receiver.received) < 1:
            time.sleep(0.01)
        started = time.monotonic()
        add_events(settings, events)
        while len(receiver.received) < events + 1:
            time.sleep(0.01)
        seconds = time.monotonic() - started
        stop(processes)
    unique = len(set(receiver.ids()))
    print(
        f"throughput: {events:,} events committed at once, {workers} workers: {seconds:.1f} s "
        f"from commit to the last arrival, {events / seconds:,.0f} deliveries/s "
        f"({unique - 1:,} distinct ids in {len(receiver.received) - 1:,} requests)"
    )


def latency(url: str, samples: int) -> None:
    with running_receiver() as receiver:
        settings = prepare(url, receiver)
        processes = start_workers(url, 1)
        add_events(settings, 1)  # the worker is up once the first one arrives
        while len(receiver.received) < 1:
            time.sleep(0.01)
        waits = []
        for n in range(samples):
            committed = time.monotonic()
            add_events(settings, 1)
            while len(receiver.received) < n + 2:
                time.sleep(0.001)
            waits.append((time.monotonic() - committed) * 1000)
        stop(processes)
    waits.sort()
    p95 = waits[int(0.95 * len(waits)) - 1]
    print(
        f"latency, commit to first attempt, idle worker ({samples} events): "
        f"p50 {statistics.median(waits):.0f} ms, p95 {p95:.0f} ms, max {waits[-1]:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{scratch}/bench.db"
        print(f"database: {url.split('@')[-1]}; {os.cpu_count()} CPUs")
        throughput(url, args.workers, args.events)
        latency(url, args.samples)


if __name__ == "__main__":
    main()
