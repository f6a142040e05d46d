"""The real service under uvicorn on a loopback port, called over HTTP like a client would."""

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import httpx
import pytest
from sqlalchemy import Engine, select

from app.ingest.models import Mention
from app.outbox.models import OutboxEvent
from app.tickets.models import Ticket
from tests.builders import DELAY_EN, DELAY_FR, mention
from tests.conftest import EXAMPLE_CONFIG, Db, KeyMaker
from tests.server import running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with running_server(database_url, EXAMPLE_CONFIG, log) as base_url:
        yield base_url


@pytest.fixture(autouse=True)
def _configuration(configured: None) -> None:
    """The server applied the configuration at start; every test empties the tables after it."""


@pytest.fixture
def admin(make_key: KeyMaker) -> dict[str, str]:
    return make_key("admin")


def test_health_and_readiness(server: str) -> None:
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/ready").json()
    assert ready["status"] == "ready"
    assert ready["database"] == "ok"
    assert ready["model"].startswith("aiguilleur-")


def test_the_readme_example_becomes_a_ticket_in_the_queue(
    server: str, admin: dict[str, str]
) -> None:
    body = {
        "source": "api",
        "external_id": "1",
        "account": "TransNordRail",
        "author": {"handle": "rider"},
        "text": DELAY_FR,
    }

    response = httpx.post(f"{server}/v1/mentions", json=body, headers=admin)

    assert response.status_code == 201
    routing = response.json()["routing"]
    assert response.json()["classification"]["label"] == "delay"
    assert routing["team"] == "customer-service"
    queue = httpx.get(f"{server}/v1/teams/customer-service/tickets", headers=admin).json()
    assert routing["ticket_id"] in [t["id"] for t in queue["items"]]


def test_eight_concurrent_repeats_make_one_mention_and_one_ticket(
    server: str, db: Db, admin: dict[str, str]
) -> None:
    body = mention("same-post", DELAY_EN, source="crm")
    barrier = Barrier(8)

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=server, timeout=60, headers=admin) as client:
            barrier.wait()
            return client.post("/v1/mentions", json=body)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))

    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.json()["routing"]["ticket_id"] for r in responses}) == 1
    assert len(db.scalars(select(Mention).where(Mention.source == "crm"))) == 1
    assert (
        len(db.scalars(select(Ticket).where(Ticket.conversation_key == "crm:same-post:rider"))) == 1
    )
    created = db.scalars(select(OutboxEvent).where(OutboxEvent.type == "ticket.created"))
    assert (
        len(
            [
                e
                for e in created
                if e.payload["data"]["ticket"]["conversation_key"] == "crm:same-post:rider"
            ]
        )
        == 1
    )


def test_concurrent_posts_of_one_conversation_share_one_ticket(
    server: str, db: Db, admin: dict[str, str]
) -> None:
    barrier = Barrier(8)

    def post(i: int) -> httpx.Response:
        body = mention(f"thread-{i}", f"{DELAY_EN} ({i})", source="crm", conversation_id="thread")
        with httpx.Client(base_url=server, timeout=60, headers=admin) as client:
            barrier.wait()
            return client.post("/v1/mentions", json=body)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))

    assert [r.status_code for r in responses] == [201] * 8
    assert len({r.json()["routing"]["ticket_id"] for r in responses}) == 1
    assert len(db.scalars(select(Ticket).where(Ticket.conversation_key == "crm:thread:rider"))) == 1


def test_bad_input_over_real_http(server: str, admin: dict[str, str]) -> None:
    response = httpx.post(
        f"{server}/v1/mentions",
        content=b"{not json",
        headers={**admin, "content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_overlapping_batches_in_opposite_orders_both_succeed(
    server: str, db: Db, admin: dict[str, str]
) -> None:
    posts = [
        mention(f"overlap-{i}", f"{DELAY_EN} ({i})", source="crm", author={"handle": f"r{i}"})
        for i in range(60)
    ]
    barrier = Barrier(2)

    def post(order: list[dict[str, object]]) -> httpx.Response:
        with httpx.Client(base_url=server, timeout=120, headers=admin) as client:
            barrier.wait()
            return client.post("/v1/mentions/batch", json={"mentions": order})

    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(post, [posts, posts[::-1]]))
        assert [r.status_code for r in responses] == [200, 200]

    assert len(db.scalars(select(Mention).where(Mention.source == "crm"))) == 60


def test_a_chunked_body_over_the_limit_is_a_413_over_real_http(
    server: str, db: Db, admin: dict[str, str]
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"source": "api", "raw": {"padding": "'
        for _ in range(20):
            yield b"x" * 65_536
        yield b'"}}'

    response = httpx.post(
        f"{server}/v1/mentions",
        content=chunks(),
        headers={**admin, "content-type": "application/json"},
    )

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert db.count(Mention) == 0


def test_the_quick_start_prints_a_first_admin_key_and_runs_the_worker(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    database_url = f"sqlite:///{tmp_path / 'quick.db'}"
    with running_server(
        database_url, EXAMPLE_CONFIG, log, AIGUILLEUR_WORKER_INTERVAL_SECONDS="0.2"
    ) as base_url:
        printed = re.search(r"first admin API key \(shown once, keep it\): (\S+)", log.read_text())
        assert printed is not None
        key = {"Authorization": f"Bearer {printed.group(1)}"}
        body = mention("quick-1", DELAY_FR)

        anonymous = httpx.post(f"{base_url}/v1/mentions", json=body)
        with_key = httpx.post(f"{base_url}/v1/mentions", json=body, headers=key)
        httpx.post(
            f"{base_url}/v1/teams/customer-service/tickets/claim",
            json={"agent": "alice", "lease_seconds": 1},
            headers=key,
        )
        ticket_url = f"{base_url}/v1/tickets/{with_key.json()['routing']['ticket_id']}"
        # The worker thread inside `serve` frees the lease once it has expired.
        deadline = time.monotonic() + 20
        while httpx.get(ticket_url, headers=key).json()["state"] != "open":
            assert time.monotonic() < deadline, "the in-process worker never freed the lease"
            time.sleep(0.2)

    assert anonymous.status_code == 401
    assert with_key.status_code == 201
    assert with_key.json()["routing"]["team"] == "customer-service"


def test_eight_agents_claiming_at_once_each_get_different_tickets(
    server: str, db: Db, admin: dict[str, str]
) -> None:
    posts = [
        mention(f"claim-{i}", f"{DELAY_EN} ({i})", author={"handle": f"rider{i}"})
        for i in range(200)
    ]
    created = httpx.post(
        f"{server}/v1/mentions/batch", json={"mentions": posts}, headers=admin, timeout=120
    )
    assert created.json()["created"] == 200
    barrier = Barrier(8)
    agents = ["alice", "bruno", "chloe"]

    def claim_until_empty(claimer: int) -> list[int]:
        claimed = []
        with httpx.Client(base_url=server, timeout=60, headers=admin) as client:
            barrier.wait()
            while True:
                response = client.post(
                    "/v1/teams/customer-service/tickets/claim",
                    json={"agent": agents[claimer % 3]},
                )
                if response.status_code == 204:
                    return claimed
                assert response.status_code == 200, response.text
                claimed.append(response.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        per_claimer = list(pool.map(claim_until_empty, range(8)))

    everything = [ticket_id for claimed in per_claimer for ticket_id in claimed]
    assert len(everything) == 200
    assert len(set(everything)) == 200
    assert sum(1 for claimed in per_claimer if claimed) > 1  # they really ran side by side
    assigned = db.scalars(select(Ticket).where(Ticket.assignee.is_not(None)))
    assert len(assigned) == 200
