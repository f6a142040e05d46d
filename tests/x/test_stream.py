"""The filtered stream through tweepy's StreamingClient against the local X stand-in: rules
derived from the watched accounts, and a stream that drops, reconnects and sends a post again."""

import time
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts
from app.accounts.schemas import AccountUpdate
from app.config import Settings
from app.ingest.models import Mention
from app.x import stream
from tests.builders import DELAY_EN, PROBLEM_EN
from tests.conftest import Db
from tests.x.conftest import COMPANY_X_ID, Models
from tests.x.fake_x import FakeX, post, user

RULE = "aiguilleur:transnordrail"


def message(post_id: int, text: str, tag: str = RULE) -> dict[str, object]:
    return {
        "data": post(post_id, text, "102"),
        "includes": {"users": [user("102", "rider_two", 40)]},
        "matching_rules": [{"id": "1", "tag": tag}],
    }


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_rules_follow_the_watched_accounts_and_leave_others_alone(
    fake_x: FakeX,
    x_settings: Settings,
    sessions: sessionmaker[Session],
    models: Models,
) -> None:
    fake_x.rules = [
        {"id": "1", "value": "from:someone", "tag": "another-app"},
        {"id": "2", "value": "@transnordrail", "tag": RULE},  # out of date
    ]
    with sessions() as session, session.begin():
        accounts.update(
            session=session,
            handle="CamilleDurand_CEO",
            change=AccountUpdate(search_terms=["Camille Durand"]),
        )

    listener = stream.open_stream(settings=x_settings, sessions=sessions, models=models)

    assert sorted((r["tag"], r["value"]) for r in fake_x.rules) == [
        ("aiguilleur:camilledurand_ceo", '("Camille Durand") -from:camilledurand_ceo -is:retweet'),
        (RULE, "(@transnordrail) -from:transnordrail -is:retweet"),
        ("another-app", "from:someone"),
    ]
    assert listener.sync() == (0, 0)  # in step: nothing to change


def test_a_dropped_stream_reconnects_and_a_post_sent_again_is_one_mention(
    fake_x: FakeX,
    x_settings: Settings,
    sessions: sessionmaker[Session],
    models: Models,
    db: Db,
) -> None:
    fake_x.stream_connections = [
        [message(4001, DELAY_EN), message(4002, PROBLEM_EN)],  # then X drops the connection
        [
            message(4002, PROBLEM_EN),  # sent again after the reconnection (backfill)
            message(4003, "@TransNordRail " + DELAY_EN),
            message(4004, "not ours", tag="another-app"),
            {
                "data": post(4005, "@TransNordRail we are on it", COMPANY_X_ID),
                "matching_rules": [{"id": "1", "tag": RULE}],
            },
        ],
    ]
    listener = stream.open_stream(settings=x_settings, sessions=sessions, models=models)

    thread = listener.filter(threaded=True, **stream.filter_options(backfill_minutes=2))
    try:
        wait_for(lambda: listener.ingested == 3)
        wait_for(lambda: fake_x.stream_opened == 2)
    finally:
        listener.disconnect()
        fake_x.stopping.set()  # X ends the connection; tweepy sees it stopped and returns
        thread.join(timeout=10)
    assert not thread.is_alive()

    ids = db.scalars(select(Mention.external_id).where(Mention.source == "x"))
    assert sorted(ids) == ["4001", "4002", "4003"]
    connects = fake_x.requests_to("/2/tweets/search/stream")
    connections = [c for c in connects if c.path == "/2/tweets/search/stream"]
    assert len(connections) == 2
    assert connections[0].params["backfill_minutes"] == "2"
    assert "author_id" in connections[0].params["expansions"]
    assert connections[0].headers["authorization"] == "Bearer test-bearer-token"


def test_a_database_that_stays_down_stops_the_stream_as_failed(
    fake_x: FakeX,
    x_settings: Settings,
    sessions: sessionmaker[Session],
    models: Models,
    db: Db,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = []

    def unavailable(**_: object) -> None:
        attempts.append(1)
        raise OperationalError("INSERT ...", {}, Exception("database is down"))

    monkeypatch.setattr(stream.ingest, "ingest", unavailable)
    monkeypatch.setattr(stream.time, "sleep", lambda _: None)
    fake_x.stream_connections = [[message(4001, DELAY_EN)], []]
    listener = stream.open_stream(settings=x_settings, sessions=sessions, models=models)

    thread = listener.filter(threaded=True)
    wait_for(lambda: not listener.running)
    fake_x.stopping.set()
    thread.join(timeout=10)

    assert listener.failed
    assert len(attempts) == stream.STORE_ATTEMPTS
    assert db.count(Mention) == 0
