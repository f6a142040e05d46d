"""Real `aiguilleur worker` processes delivering to a local CRM: several at once deliver each
event exactly once, and neither a killed worker nor a database restart loses an event."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from app.db import make_sessionmaker
from app.delivery import service
from app.delivery.models import Delivery
from app.outbox import service as outbox
from app.teams import service as teams
from tests.conftest import POSTGRES_URL
from tests.delivery.receiver import Behaviour, Receiver, running_receiver

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def events_for_customer_service(engine: Engine, receiver: Receiver, count: int) -> None:
    """An endpoint for the receiver, and `count` events of the team, committed together."""
    with make_sessionmaker(engine)() as session, session.begin():
        team = teams.get(session=session, slug="customer-service")
        service.create_endpoint(
            session=session, team=team, url=receiver.url, event_types=[], enabled=True
        )
        for i in range(count):
            outbox.record(
                session=session,
                type="ticket.updated",
                subject_type="ticket",
                subject_id=str(i),
                team_id=team.id,
                data={"n": i},
            )


@contextmanager
def workers(
    database_url: str, count: int, log: Path, **settings: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        "AIGUILLEUR_DATABASE_URL": database_url,
        "AIGUILLEUR_WEBHOOKS_ALLOW_LOOPBACK": "true",
        "AIGUILLEUR_DELIVERY_INTERVAL_SECONDS": "0.05",
        "AIGUILLEUR_LOG_LEVEL": "WARNING",
        **settings,
    }
    with log.open("w") as output:
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker"],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            for _ in range(count)
        ]
        try:
            yield processes
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                process.wait(timeout=30)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def delivered(engine: Engine) -> int:
    with make_sessionmaker(engine)() as session:
        query = select(func.count()).where(Delivery.state == "delivered")
        return int(session.scalar(query) or 0)


@pytest.mark.skipif(not POSTGRES_URL, reason="several worker processes: PostgreSQL")
def test_four_workers_deliver_3000_events_exactly_once(
    engine: Engine, configured: None, database_url: str, tmp_path: Path
) -> None:
    with running_receiver() as receiver:
        events_for_customer_service(engine, receiver, 3_000)
        started = time.monotonic()
        with workers(database_url, 4, tmp_path / "workers.log"):
            wait_for(lambda: delivered(engine) == 3_000, 180, "3,000 deliveries")
        seconds = time.monotonic() - started

    ids = receiver.ids()
    assert len(ids) == 3_000, (tmp_path / "workers.log").read_text()[-2000:]
    assert len(set(ids)) == 3_000
    print(f"3,000 deliveries by 4 workers in {seconds:.1f} s")


def test_a_worker_killed_mid_delivery_loses_nothing(
    engine: Engine, configured: None, database_url: str, tmp_path: Path
) -> None:
    with running_receiver() as receiver:
        receiver.script = [Behaviour(delay=3.0)]  # the first attempt hangs...
        events_for_customer_service(engine, receiver, 1)
        lease = {"AIGUILLEUR_DELIVERY_LEASE_SECONDS": "2"}
        with workers(database_url, 1, tmp_path / "first.log", **lease) as [first]:
            wait_for(lambda: receiver.started > 0, 30, "the first attempt")
            first.send_signal(signal.SIGKILL)  # ...and its worker dies in the middle of it
            first.wait(timeout=10)
        with workers(database_url, 1, tmp_path / "second.log", **lease):
            wait_for(lambda: delivered(engine) == 1, 60, "the delivery, by another worker")

    # At least once: the event arrived, every copy with the same id.
    assert len(set(receiver.ids())) == 1
    with make_sessionmaker(engine)() as session:
        [delivery] = session.scalars(select(Delivery)).all()
        assert delivery.attempts >= 2


@pytest.mark.skipif(not POSTGRES_URL, reason="terminates PostgreSQL backends")
def test_a_database_restart_during_delivery_loses_nothing(
    engine: Engine, configured: None, database_url: str, tmp_path: Path
) -> None:
    with running_receiver(Behaviour(delay=0.01)) as receiver:
        events_for_customer_service(engine, receiver, 600)
        # A pass whose connection is cut before it records its outcomes leaves its claims to
        # their lease: 4 s here, not the default minute, which the test spent waiting whenever
        # a cut fell mid-pass (under load, most runs).
        lease = {"AIGUILLEUR_DELIVERY_LEASE_SECONDS": "4"}
        with workers(database_url, 2, tmp_path / "workers.log", **lease):
            wait_for(lambda: len(receiver.ids()) > 50, 60, "the first deliveries")
            for _ in range(3):  # every connection of the workers is cut, as by a restart
                with engine.connect() as connection:
                    connection.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    )
                time.sleep(0.5)
            wait_for(lambda: delivered(engine) == 600, 120, "600 deliveries")

    assert len(set(receiver.ids())) == 600
