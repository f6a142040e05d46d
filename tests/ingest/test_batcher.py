"""Group commit of single mentions: concurrent posts are ingested together, each answered alone."""

import asyncio
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from app.classify.service import Classifier
from app.config import Settings
from app.ingest import service
from app.ingest.batcher import Answer, Batcher, Outcome
from app.ingest.models import Mention
from app.ingest.schemas import MentionIn
from app.main import create_app
from app.outbox.models import OutboxEvent
from app.tickets.models import Ticket
from tests.builders import DELAY_EN, DELAY_FR, PROBLEM_EN, mention
from tests.conftest import Db, KeyMaker

POSTS = 8


@pytest.fixture
def grouping_app(
    settings: Settings, engine: Engine, classifier: Classifier, configured: None
) -> FastAPI:
    """The application with a 200 ms window, so that posts sent together form one group."""
    wide = settings.model_copy(update={"ingest_group_wait_ms": 200.0})
    return create_app(wide, classifier=classifier, with_worker=False)


@pytest.fixture
def groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each group the service is asked to ingest."""
    sizes: list[int] = []
    real = service.ingest

    def recording(**kwargs: Any) -> Any:
        sizes.append(len(kwargs["mentions"]))
        return real(**kwargs)

    monkeypatch.setattr(service, "ingest", recording)
    return sizes


@pytest.fixture
def grouped(grouping_app: FastAPI, make_key: KeyMaker) -> Iterator[TestClient]:
    with TestClient(
        grouping_app, headers=make_key("ingest"), raise_server_exceptions=False
    ) as client:
        yield client


def post_together(client: TestClient, bodies: Sequence[dict[str, Any]]) -> list[Any]:
    barrier = Barrier(len(bodies))

    def post(body: dict[str, Any]) -> Any:
        barrier.wait()
        return client.post("/v1/mentions", json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_concurrent_posts_are_one_group_and_each_gets_its_own_answer(
    grouped: TestClient, groups: list[int], db: Db
) -> None:
    texts = [DELAY_EN, PROBLEM_EN, DELAY_FR]
    bodies = [mention(f"g{i}", texts[i % 3], author={"handle": f"rider{i}"}) for i in range(POSTS)]

    responses = post_together(grouped, bodies)

    assert [r.status_code for r in responses] == [201] * POSTS
    assert [r.json()["external_id"] for r in responses] == [f"g{i}" for i in range(POSTS)]
    assert [r.json()["text"] for r in responses] == [b["text"] for b in bodies]
    assert len({r.json()["routing"]["ticket_id"] for r in responses}) == POSTS
    assert max(groups) > 1  # they were written together
    for response in responses:  # what was answered is what is stored
        stored = grouped.get(f"/v1/mentions/{response.json()['id']}")
        assert stored.json() == response.json()
    assert db.count(Mention) == POSTS
    assert db.count(Ticket) == POSTS


def test_the_same_post_sent_concurrently_is_one_mention(
    grouped: TestClient, groups: list[int], db: Db
) -> None:
    body = mention("same", DELAY_EN, source="crm")

    responses = post_together(grouped, [body] * POSTS)

    assert sorted(r.status_code for r in responses) == [200] * (POSTS - 1) + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert db.count(Mention) == 1
    assert db.count(Ticket) == 1
    created = db.scalars(select(OutboxEvent).where(OutboxEvent.type == "ticket.created"))
    assert len(created) == 1


def test_an_unknown_account_fails_alone(grouped: TestClient, groups: list[int], db: Db) -> None:
    bodies = [mention(f"u{i}", DELAY_EN, author={"handle": f"r{i}"}) for i in range(POSTS)]
    bodies[3] = mention("u3", DELAY_EN, account="not_watched")

    responses = post_together(grouped, bodies)

    statuses = [r.status_code for r in responses]
    assert statuses == [201] * 3 + [422] + [201] * (POSTS - 4)
    assert responses[3].json()["error"]["code"] == "unknown_account"
    assert responses[3].json()["error"]["details"] == [{"index": 0, "account": "not_watched"}]
    assert db.count(Mention) == POSTS - 1


def test_an_item_that_breaks_its_group_fails_alone(
    grouped: TestClient, groups: list[int], db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.tickets import service as tickets

    real = tickets.publication

    def failing_for_the_poisoned_thread(**kwargs: Any) -> Any:
        if kwargs["ticket"].conversation_key.startswith("api:poison"):
            raise RuntimeError("the disk is full")
        return real(**kwargs)

    monkeypatch.setattr(tickets, "publication", failing_for_the_poisoned_thread)
    bodies = [mention(f"p{i}", DELAY_EN, author={"handle": f"r{i}"}) for i in range(POSTS)]
    bodies[5] = mention("poison", DELAY_EN)

    responses = post_together(grouped, bodies)

    assert [r.status_code for r in responses] == [201] * 5 + [500] + [201] * (POSTS - 6)
    assert responses[5].json()["error"]["code"] == "internal_error"
    assert max(groups) > 1
    assert db.count(Mention) == POSTS - 1
    assert db.scalars(select(Mention).where(Mention.external_id == "poison")) == []


def test_a_post_stored_meanwhile_by_another_process_is_a_duplicate(
    client: TestClient, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.post("/v1/mentions", json=mention("raced", DELAY_EN))
    # As if another process had stored it between our look-up and our insert.
    real, calls = service._existing, []

    def blind_once(**kwargs: Any) -> Any:
        calls.append(1)
        return {} if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(service, "_existing", blind_once)

    again = client.post("/v1/mentions", json=mention("raced", DELAY_EN))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert db.count(Mention) == 1


def test_a_thread_opened_meanwhile_by_another_process_is_joined(
    client: TestClient, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.ingest import store

    first = client.post("/v1/mentions", json=mention("t1", DELAY_EN, conversation_id="t"))
    # As if another process had opened the thread's ticket after our look-up.
    monkeypatch.setattr(store, "_threads_with_tickets", lambda **kwargs: set())

    follow_up = client.post("/v1/mentions", json=mention("t2", DELAY_EN, conversation_id="t"))

    assert follow_up.status_code == 201
    assert follow_up.json()["routing"]["ticket_id"] == first.json()["routing"]["ticket_id"]
    assert db.count(Ticket) == 1


def answer(external_id: str) -> Answer:
    return Answer(mention=None, created=True)  # type: ignore[arg-type]  # unused by the batcher


def test_the_batcher_answers_each_caller_with_its_own_outcome() -> None:
    seen: list[list[str]] = []

    def work(mentions: Sequence[MentionIn]) -> list[Outcome]:
        seen.append([m.external_id for m in mentions])
        return [
            ValueError(m.external_id) if m.external_id == "bad" else answer(m.external_id)
            for m in mentions
        ]

    async def scenario() -> list[Any]:
        batcher = Batcher(work, max_items=3, wait=0.05)
        batcher.start()
        ids = ["a", "bad", "c", "d", "e"]
        outcomes = await asyncio.gather(
            *(batcher.ingest(MentionIn.model_validate(mention(i, "hello"))) for i in ids),
            return_exceptions=True,
        )
        await batcher.stop()
        return outcomes

    outcomes = asyncio.run(scenario())

    assert [type(o).__name__ for o in outcomes] == [
        "Answer",
        "ValueError",
        "Answer",
        "Answer",
        "Answer",
    ]
    assert str(outcomes[1]) == "bad"
    assert seen == [["a", "bad", "c"], ["d", "e"]]  # at most max_items per group, in order
