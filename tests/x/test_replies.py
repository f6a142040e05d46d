"""Replies: queued through the API on a ticket, posted by the worker with `create_tweet` through
tweepy against the local X stand-in, recorded as the first response; and each failure of X."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.classify.service import Classifier
from app.config import Settings
from app.main import create_app
from app.outbox.models import OutboxEvent
from app.tickets.models import Ticket, TicketEvent
from app.x import sending
from app.x.models import Reply, ReplyState
from tests.builders import DELAY_EN, PROBLEM_EN, mention
from tests.conftest import Db, KeyMaker
from tests.x.conftest import Clock
from tests.x.fake_x import Failure, FakeX

ANSWER = "Sorry for the wait: a signal failure at Leeds, trains are moving again. ^Alice"


@pytest.fixture
def api(
    x_settings: Settings, classifier: Classifier, configured: None, make_key: KeyMaker
) -> Iterator[TestClient]:
    app = create_app(x_settings, classifier=classifier, with_worker=False)
    with TestClient(app, headers=make_key("ingest", "queue:customer-service")) as client:
        yield client


def x_ticket(api: TestClient, post_id: str = "5001", text: str = DELAY_EN) -> int:
    body = mention(post_id, text, source="x", author={"handle": "rider_two", "id": "102"})
    created = api.post("/v1/mentions", json=body)
    assert created.status_code == 201, created.text
    ticket_id = created.json()["routing"]["ticket_id"]
    assert ticket_id is not None
    return int(ticket_id)


def queued_reply(api: TestClient, clock: Clock) -> int:
    """A ticket from a post on X with a reply queued; the clock a second later. Its id."""
    ticket_id = x_ticket(api)
    queued = api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER})
    assert queued.status_code == 202, queued.text
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    return ticket_id


def send(sessions: sessionmaker[Session], settings: Settings, clock: Clock) -> int:
    return sending.run(sessions=sessions, settings=settings, clock=clock)


def the_reply(db: Db) -> Reply:
    return db.one(select(Reply))


def events(db: Db, ticket_id: int) -> list[str]:
    query = select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id)
    return list(db.scalars(query.order_by(TicketEvent.id)))


def test_a_queued_reply_goes_out_in_reply_to_the_post_and_is_the_first_response(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
) -> None:
    ticket_id = x_ticket(api)

    queued = api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER, "agent": "alice"})

    assert queued.status_code == 202, queued.text
    assert queued.json()["state"] == "queued"
    assert queued.json()["in_reply_to_id"] == "5001"
    assert fake_x.tweets == []  # nothing is posted inside the request
    clock.now = datetime.now(UTC) + timedelta(seconds=1)

    assert send(sessions, x_settings, clock) == 1

    [posted] = fake_x.requests_to("/2/tweets")
    assert posted.body == {"text": ANSWER, "reply": {"in_reply_to_tweet_id": "5001"}}
    assert posted.headers["authorization"].startswith("OAuth ")
    assert 'oauth_token="access-token"' in posted.headers["authorization"]
    [listed] = api.get(f"/v1/tickets/{ticket_id}/replies").json()
    assert listed["state"] == "sent"
    assert listed["x_post_id"] == fake_x.tweets[0]["id"]
    assert listed["author"] == "alice"
    ticket = db.one(select(Ticket).where(Ticket.id == ticket_id))
    assert ticket.first_response_at == clock.now
    assert events(db, ticket_id)[-2:] == ["reply_queued", "replied"]
    published = db.scalars(select(OutboxEvent.type).order_by(OutboxEvent.occurred_at))
    assert published[-1] == "ticket.updated"
    assert send(sessions, x_settings, clock) == 0  # sent once


def test_a_reply_answers_the_latest_post_of_the_thread_or_the_one_named(
    api: TestClient, db: Db
) -> None:
    ticket_id = x_ticket(api, "5001")
    follow_up = mention(
        "5002",
        "@TransNordRail still stuck, 70 minutes now",
        source="x",
        author={"handle": "rider_two"},
        in_reply_to_id="5001",
        conversation_id="5001",
    )
    assert api.post("/v1/mentions", json=follow_up).json()["routing"]["ticket_id"] == ticket_id
    first = db.scalars(select(Reply))  # nothing yet

    latest = api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER})
    mention_id = api.get(f"/v1/tickets/{ticket_id}").json()["thread"][0]["id"]
    named = api.post(
        f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER + " (2)", "mention_id": mention_id}
    )

    assert first == []
    assert latest.json()["in_reply_to_id"] == "5002"
    assert named.json()["in_reply_to_id"] == "5001"


def test_a_ticket_without_a_post_from_x_cannot_be_answered_on_x(api: TestClient, db: Db) -> None:
    created = api.post("/v1/mentions", json=mention("crm-1", DELAY_EN)).json()
    ticket_id = created["routing"]["ticket_id"]

    refused = api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER})

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "validation_failed"
    assert db.count(Reply) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "x" * 281}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "ok", "mention_id": 0}, "mention_id"),
        ({"text": "ok", "extra": 1}, "extra"),
    ],
)
def test_a_bad_reply_is_a_422(api: TestClient, db: Db, body: dict[str, Any], field: str) -> None:
    ticket_id = x_ticket(api)
    refused = api.post(f"/v1/tickets/{ticket_id}/replies", json=body)
    assert refused.status_code == 422
    assert field in refused.text
    assert db.count(Reply) == 0


def test_another_team_s_ticket_is_not_found(api: TestClient, make_key: KeyMaker, db: Db) -> None:
    ticket_id = x_ticket(api)
    other = make_key("queue:communications", name="comms")
    refused = api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER}, headers=other)
    listed = api.get(f"/v1/tickets/{ticket_id}/replies", headers=other)
    assert (refused.status_code, listed.status_code) == (404, 404)
    assert db.count(Reply) == 0


def test_without_x_credentials_replies_are_refused_with_503(client: TestClient, db: Db) -> None:
    body = mention("5001", DELAY_EN, source="x")
    ticket_id = client.post("/v1/mentions", json=body).json()["routing"]["ticket_id"]
    refused = client.post(f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "not_configured"
    assert db.count(Reply) == 0


def test_duplicate_content_fails_at_once_with_x_s_reason(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
) -> None:
    ticket_id = x_ticket(api)
    fake_x.tweets.append({"id": "1", "text": ANSWER})  # X already has this text
    api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER})
    clock.now = datetime.now(UTC) + timedelta(seconds=1)

    send(sessions, x_settings, clock)

    reply = the_reply(db)
    assert reply.state is ReplyState.FAILED
    assert reply.attempts == 1
    assert reply.last_error == (
        "X answered 403: You are not allowed to create a Tweet with duplicate content."
    )
    assert events(db, ticket_id)[-1] == "reply_failed"
    assert db.one(select(Ticket.first_response_at).where(Ticket.id == ticket_id)) is None
    clock.advance(hours=1)
    assert send(sessions, x_settings, clock) == 0  # never retried


def test_a_rate_limit_retries_at_its_reset(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
) -> None:
    ticket_id = x_ticket(api)
    api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER})
    clock.now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    reset = int(clock.now.timestamp()) + 300
    limited = {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429}
    fake_x.fail(Failure("/2/tweets", 429, limited, {"x-rate-limit-reset": str(reset)}, "POST"))

    send(sessions, x_settings, clock)

    reply = the_reply(db)
    assert reply.state is ReplyState.QUEUED
    assert reply.next_attempt_at == datetime.fromtimestamp(reset + 1, tz=UTC)
    assert send(sessions, x_settings, clock) == 0
    clock.now = reply.next_attempt_at
    assert send(sessions, x_settings, clock) == 1
    assert the_reply(db).state is ReplyState.SENT
    assert len(fake_x.tweets) == 1


def test_server_errors_are_retried_with_backoff_then_fail(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
) -> None:
    settings = x_settings.model_copy(update={"x_reply_max_attempts": 3})
    queued_reply(api, clock)
    down = {"title": "Service Unavailable", "detail": "Service Unavailable", "status": 503}
    fake_x.fail(*[Failure("/2/tweets", 503, down, method="POST")] * 3)

    waits = []
    for _ in range(3):
        assert send(sessions, settings, clock) == 1
        reply = the_reply(db)
        waits.append(reply.next_attempt_at - clock.now)
        clock.now = reply.next_attempt_at

    assert waits[:2] == [timedelta(seconds=30), timedelta(seconds=60)]
    reply = the_reply(db)
    assert reply.state is ReplyState.FAILED
    assert reply.last_error == "X answered 503: Service Unavailable (attempt 3, the last)"
    assert fake_x.tweets == []


def test_x_unreachable_is_retried(
    api: TestClient, db: Db, sessions: sessionmaker[Session], x_settings: Settings, clock: Clock
) -> None:
    queued_reply(api, clock)
    closed = x_settings.model_copy(update={"x_api_url": "http://127.0.0.1:9"})  # discard port

    send(sessions, closed, clock)

    reply = the_reply(db)
    assert reply.state is ReplyState.QUEUED
    assert reply.last_error == "ConnectionError"
    assert reply.next_attempt_at == clock.now + timedelta(seconds=30)


def test_a_reply_whose_worker_died_is_sent_once_by_another(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
) -> None:
    from app.x import replies

    queued_reply(api, clock)
    with sessions() as session, session.begin():  # a worker claims it, then dies
        [claimed] = replies.claim(
            session=session, now=clock.now, lease=timedelta(seconds=120), limit=10, max_attempts=6
        )

    assert send(sessions, x_settings, clock) == 0  # its lease still holds
    clock.advance(seconds=121)
    assert send(sessions, x_settings, clock) == 1
    with sessions() as session, session.begin():  # the dead worker's late outcome is dropped
        late = replies.Outcome(post_id="999")
        assert not replies.record(session=session, claimed=claimed, outcome=late, now=clock.now)
    reply = the_reply(db)
    assert (reply.state, reply.attempts) == (ReplyState.SENT, 2)
    assert reply.x_post_id == fake_x.tweets[0]["id"]


def test_a_reply_whose_workers_die_on_every_attempt_fails_and_says_so(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
) -> None:
    from app.x import replies

    ticket_id = queued_reply(api, clock)
    lease, attempts = timedelta(seconds=120), x_settings.x_reply_max_attempts
    for _ in range(attempts):  # each claim's worker dies before recording anything
        with sessions() as session, session.begin():
            assert (
                len(
                    replies.claim(
                        session=session, now=clock.now, lease=lease, limit=1, max_attempts=attempts
                    )
                )
                == 1
            )
        clock.advance(seconds=121)

    assert send(sessions, x_settings, clock) == 0

    reply = the_reply(db)
    assert (reply.state, reply.attempts, reply.crashes) == (ReplyState.FAILED, attempts, attempts)
    assert reply.last_error is not None
    assert "check on X whether it went out" in reply.last_error
    assert events(db, ticket_id)[-1] == "reply_failed"
    assert fake_x.tweets == []


def test_only_attempts_whose_worker_died_count_toward_giving_up(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
) -> None:
    from sqlalchemy import update

    from app.x import replies

    ticket_id = x_ticket(api)
    api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER})
    last = x_settings.x_reply_max_attempts
    with sessions() as session, session.begin():  # every earlier attempt recorded an X error
        session.execute(update(Reply).values(attempts=last - 1))
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    with sessions() as session, session.begin():  # the last attempt's worker dies
        replies.claim(
            session=session, now=clock.now, lease=timedelta(seconds=120), limit=1, max_attempts=last
        )
    clock.advance(seconds=121)

    assert send(sessions, x_settings, clock) == 1

    reply = the_reply(db)
    assert (reply.state, reply.crashes) == (ReplyState.SENT, 1)
    assert events(db, ticket_id)[-1] == "replied"


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        (400, "Invalid Request: the post does not exist", "X answered 400: Invalid Request"),
        (404, "Not Found", "X answered 404: Not Found"),
        (403, "You are not permitted to reply to this conversation", "X answered 403: You are"),
    ],
)
def test_refusals_fail_at_once(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
    status: int,
    detail: str,
    expected: str,
) -> None:
    ticket_id = queued_reply(api, clock)
    fake_x.fail(Failure("/2/tweets", status, {"detail": detail, "status": status}, method="POST"))

    send(sessions, x_settings, clock)

    reply = the_reply(db)
    assert reply.state is ReplyState.FAILED
    assert (reply.last_error or "").startswith(expected)
    assert events(db, ticket_id)[-1] == "reply_failed"


def test_refused_credentials_are_retried_and_hold_the_other_replies(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
) -> None:
    first, second = x_ticket(api, "5001"), x_ticket(api, "5002", text=PROBLEM_EN)
    api.post(f"/v1/tickets/{first}/replies", json={"text": ANSWER})
    api.post(f"/v1/tickets/{second}/replies", json={"text": ANSWER + " (2)"})
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    fake_x.fail(Failure("/2/tweets", 401, {"detail": "Unauthorized", "status": 401}, method="POST"))

    assert send(sessions, x_settings, clock) == 1  # the pass stops at the refusal

    states = db.scalars(select(Reply.state).order_by(Reply.id))
    assert states == [ReplyState.QUEUED, ReplyState.QUEUED]
    assert db.scalars(select(Reply.attempts).order_by(Reply.id)) == [1, 0]
    clock.advance(seconds=31)
    assert send(sessions, x_settings, clock) == 2
    assert db.scalars(select(Reply.state)) == [ReplyState.SENT, ReplyState.SENT]


def test_a_reply_x_took_but_answered_too_late_is_recorded_sent_once(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
) -> None:
    impatient = x_settings.model_copy(update={"x_timeout_seconds": 0.5})
    ticket_id = x_ticket(api)
    text = "Sorry for the wait & thanks for your patience <3 ^Alice"
    api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": text})
    clock.now = datetime.now(UTC) + timedelta(seconds=1)
    fake_x.answer_created_after = 1.5  # X posts it, its answer comes after our timeout

    send(sessions, impatient, clock)
    reply = the_reply(db)
    assert (reply.state, reply.last_error) == (ReplyState.QUEUED, "ReadTimeout")
    fake_x.answer_created_after = 0.0
    clock.now = reply.next_attempt_at

    send(sessions, impatient, clock)  # X refuses the repeat; the earlier post is found

    reply = the_reply(db)
    assert reply.state is ReplyState.SENT
    assert reply.x_post_id == fake_x.tweets[0]["id"]
    assert len(fake_x.tweets) == 1
    assert db.one(select(Ticket.first_response_at).where(Ticket.id == ticket_id)) == clock.now


def test_a_duplicate_on_the_first_attempt_is_not_taken_for_an_earlier_post(
    api: TestClient,
    fake_x: FakeX,
    db: Db,
    sessions: sessionmaker[Session],
    x_settings: Settings,
    clock: Clock,
) -> None:
    ticket_id = x_ticket(api)
    fake_x.tweets.append({"id": "7", "text": ANSWER, "reply": {"in_reply_to_tweet_id": "5001"}})
    api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": ANSWER})
    clock.now = datetime.now(UTC) + timedelta(seconds=1)

    send(sessions, x_settings, clock)

    assert the_reply(db).state is ReplyState.FAILED  # someone else posted it: not ours
    assert fake_x.requests_to("/2/users/me") == []
