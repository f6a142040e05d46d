"""The X pollers through tweepy against the local X stand-in: pages without gaps or repeats,
checkpoints that survive a crash between pages, rate limits waited out, search terms, and one
post through several channels is one mention."""

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import tweepy
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts
from app.accounts.schemas import AccountUpdate
from app.config import Settings
from app.ingest.models import Mention
from app.x import client as x_client
from app.x import polling
from app.x.models import Channel, Checkpoint
from tests.builders import DELAY_EN, PROBLEM_EN
from tests.conftest import Db
from tests.x.conftest import COMPANY_X_ID, Clock, Models
from tests.x.fake_x import Failure, FakeX, post, snowflake, user

RIDERS = [user("101", "rider_one", 250), user("102", "rider_two"), user("103", "rider_three")]


def stock(fake: FakeX, count: int, start: int = 1000) -> list[str]:
    """`count` mentions of @TransNordRail, ids start+1..start+count; returns their ids."""
    for rider in RIDERS:
        fake.users[rider["id"]] = rider
    posts = fake.mentions.setdefault(COMPANY_X_ID, [])
    for i in range(start + 1, start + count + 1):
        text = f"{DELAY_EN} (post {i})" if i % 2 else f"{PROBLEM_EN} (post {i})"
        posts.append(post(i, text, RIDERS[i % 3]["id"]))
    return [str(i) for i in range(start + 1, start + count + 1)]


def x_ids(db: Db) -> list[str]:
    return sorted(db.scalars(select(Mention.external_id).where(Mention.source == "x")))


def checkpoint(db: Db, channel: Channel = Channel.MENTIONS) -> Checkpoint:
    return db.one(select(Checkpoint).where(Checkpoint.channel == channel))


Poll = Callable[..., int]


@pytest.fixture
def poll(
    sessions: sessionmaker[Session], x_settings: Settings, models: Models, clock: Clock
) -> Poll:
    def run(**overrides: object) -> int:
        options: dict[str, object] = {
            "sessions": sessions,
            "settings": x_settings,
            "models": models,
            "clock": clock,
        }
        return polling.run(**{**options, **overrides})  # type: ignore[arg-type]

    return run


def test_every_page_is_read_once_and_the_checkpoint_moves_to_the_newest(
    fake_x: FakeX, poll: Poll, db: Db, clock: Clock
) -> None:
    ids = stock(fake_x, 5)  # pages of 2: three pages

    assert poll() == 3

    assert x_ids(db) == ids
    calls = fake_x.requests_to(f"/2/users/{COMPANY_X_ID}/mentions")
    assert [c.params.get("pagination_token") for c in calls] == [None, "t1003", "t1001"]
    assert "since_id" not in calls[0].params
    assert "start_time" in calls[0].params
    assert calls[0].params["expansions"] == "author_id,referenced_tweets.id,in_reply_to_user_id"
    saved = checkpoint(db)
    assert (saved.since_id, saved.pagination_token, saved.posts_seen) == ("1005", None, 5)

    stock(fake_x, 2, start=1005)  # two new posts; the next poll reads only those
    clock.advance(seconds=61)
    assert poll() == 1
    assert fake_x.requests_to(f"/2/users/{COMPANY_X_ID}/mentions")[-1].params["since_id"] == "1005"
    assert x_ids(db) == [*ids, "1006", "1007"]
    assert checkpoint(db).since_id == "1007"


def test_a_poll_waits_for_its_interval(fake_x: FakeX, poll: Poll, db: Db, clock: Clock) -> None:
    stock(fake_x, 1)
    assert poll() == 1
    clock.advance(seconds=30)
    assert poll() == 0  # the default interval is 60 s
    assert len(fake_x.requests_to("/2/users/")) == 1


def test_a_crash_between_pages_resumes_at_the_next_page(
    fake_x: FakeX, poll: Poll, db: Db, clock: Clock
) -> None:
    ids = stock(fake_x, 5)
    real_reader = x_client.reader
    pages_served = 0

    class Crash(BaseException):  # the process dies: nothing in it catches that
        pass

    def crashing_reader(settings: Settings) -> tweepy.Client:
        x = real_reader(settings)
        read = x.get_users_mentions

        def get_users_mentions(*args: object, **kwargs: object) -> object:
            nonlocal pages_served
            if pages_served == 1:
                raise Crash("the worker dies here")
            pages_served += 1
            return read(*args, **kwargs)

        x.get_users_mentions = get_users_mentions
        return x

    with pytest.raises(Crash):
        poll(reader=crashing_reader)
    assert x_ids(db) == ids[-2:]  # the first page (newest two) is in, with its checkpoint
    saved = checkpoint(db)
    assert (saved.pagination_token, saved.sweep_newest_id, saved.since_id) == (
        "t1003",
        "1005",
        None,
    )

    assert poll() == 0  # the dead worker's lease holds the checkpoint until it ends
    clock.advance(seconds=121)
    assert poll() == 2

    assert x_ids(db) == ids  # no gap
    resumed = fake_x.requests_to(f"/2/users/{COMPANY_X_ID}/mentions")[1:]
    assert [c.params.get("pagination_token") for c in resumed] == ["t1003", "t1001"]
    assert checkpoint(db).since_id == "1005"
    assert checkpoint(db).posts_seen == 5  # and no page read twice


def test_a_rate_limit_pauses_until_its_reset_then_resumes_where_it_stopped(
    fake_x: FakeX, poll: Poll, db: Db, clock: Clock
) -> None:
    ids = stock(fake_x, 5)
    reset = int(clock().timestamp()) + 900
    limits = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0"}
    fake_x.fail(
        Failure(
            f"/2/users/{COMPANY_X_ID}/mentions",
            429,
            {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
            {**limits, "x-rate-limit-reset": str(reset)},
            when={"pagination_token": "t1003"},  # the second page
        )
    )
    served = lambda: [  # noqa: E731
        c.params.get("pagination_token")
        for c in fake_x.requests_to(f"/2/users/{COMPANY_X_ID}/mentions")
    ]

    assert poll() == 1
    saved = checkpoint(db)
    assert saved.next_poll_at == datetime.fromtimestamp(reset + 1, tz=UTC)
    assert saved.pagination_token == "t1003"
    assert "rate limited" in (saved.last_error or "")
    assert x_ids(db) == ids[-2:]

    clock.advance(seconds=600)
    assert poll() == 0  # still limited: X is not asked
    assert served() == [None, "t1003"]
    clock.advance(seconds=301)
    assert poll() == 2
    assert served() == [None, "t1003", "t1003", "t1001"]
    assert x_ids(db) == ids
    assert checkpoint(db).last_error is None


def test_an_expired_page_token_restarts_the_sweep_without_duplicates(
    fake_x: FakeX, poll: Poll, db: Db, clock: Clock, sessions: sessionmaker[Session]
) -> None:
    ids = stock(fake_x, 3)
    with sessions() as session, session.begin():
        session.add(
            Checkpoint(
                account_id=accounts.get(session=session, handle="transnordrail").id,
                channel=Channel.MENTIONS,
                pagination_token="t-gone",
                sweep_newest_id="999",
                next_poll_at=clock(),
            )
        )
    fake_x.fail(Failure("/2/users/", 400, {"errors": [{"message": "invalid pagination_token"}]}))

    assert poll() == 2  # refused, then read again from the start in the same pass

    calls = fake_x.requests_to(f"/2/users/{COMPANY_X_ID}/mentions")
    assert [c.params.get("pagination_token") for c in calls] == ["t-gone", None, "t1001"]
    saved = checkpoint(db)
    assert (saved.pagination_token, saved.since_id, saved.posts_seen) == (None, "1003", 3)
    assert x_ids(db) == ids


def test_own_posts_and_retweets_are_left_out_and_authors_are_kept(
    fake_x: FakeX, poll: Poll, db: Db
) -> None:
    stock(fake_x, 1)
    fake_x.users[COMPANY_X_ID] = user(COMPANY_X_ID, "TransNordRail", 90000)
    fake_x.mentions[COMPANY_X_ID] += [
        post(2001, "@TransNordRail we are on it", COMPANY_X_ID),
        post(
            2002,
            "RT @someone: @TransNordRail late again",
            "102",
            referenced_tweets=[{"type": "retweeted", "id": "1"}],
        ),
        post(
            2003,
            "@TransNordRail my bag is still missing",
            "101",
            conversation_id="1999",
            referenced_tweets=[{"type": "replied_to", "id": "1999"}],
            lang="und",
            created_at="2026-11-23T07:58:00.000Z",
        ),
    ]

    poll()

    assert x_ids(db) == ["1001", "2003"]
    reply = db.one(select(Mention).where(Mention.external_id == "2003"))
    assert (reply.author_handle, reply.author_external_id, reply.author_followers) == (
        "rider_one",
        "101",
        250,
    )
    assert (reply.in_reply_to_id, reply.conversation_id, reply.lang) == ("1999", "1999", "en")
    assert reply.posted_at == datetime(2026, 11, 23, 7, 58, tzinfo=UTC)
    assert checkpoint(db).posts_seen == 4  # what X returned, the left-out ones included


def test_search_terms_find_posts_that_name_the_account_without_a_tag(
    fake_x: FakeX, poll: Poll, db: Db, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session, session.begin():
        accounts.update(
            session=session,
            handle="CamilleDurand_CEO",
            change=AccountUpdate(search_terms=["Camille Durand", "TransNord CEO"]),
        )
    fake_x.users["102"] = RIDERS[1]
    fake_x.search = [post(3001, "Camille Durand should ride the 7:40 one day", "102")]

    poll()

    [search] = fake_x.requests_to("/2/tweets/search/recent")
    assert search.params["query"] == (
        '("Camille Durand" OR "TransNord CEO") -from:camilledurand_ceo -is:retweet'
    )
    mention = db.one(select(Mention).where(Mention.external_id == "3001"))
    assert db.one(select(Mention.account_id).where(Mention.id == mention.id)) == (
        accounts_id(db, "camilledurand_ceo")
    )
    assert checkpoint(db, Channel.SEARCH).since_id == "3001"


def accounts_id(db: Db, handle: str) -> int:
    from app.accounts.models import Account

    return int(db.one(select(Account.id).where(Account.handle == handle)))


def test_one_post_through_mentions_search_and_a_crm_is_one_mention(
    fake_x: FakeX, poll: Poll, db: Db, sessions: sessionmaker[Session], client: object
) -> None:
    with sessions() as session, session.begin():
        accounts.update(
            session=session,
            handle="TransNordRail",
            change=AccountUpdate(search_terms=["TransNord"]),
        )
    stock(fake_x, 1)
    fake_x.search = list(fake_x.mentions[COMPANY_X_ID])  # the same post, found by search too

    poll()
    forwarded = client.post(  # type: ignore[attr-defined]
        "/v1/mentions",
        json={
            "source": "x",
            "external_id": "1001",
            "account": "TransNordRail",
            "author": {"handle": "rider_two"},
            "text": DELAY_EN,
        },
    )

    assert forwarded.status_code == 200  # already there: a duplicate
    assert x_ids(db) == ["1001"]
    assert checkpoint(db, Channel.SEARCH).posts_seen == 1


def test_an_x_failure_backs_off_for_an_interval_and_keeps_the_place(
    fake_x: FakeX, poll: Poll, db: Db, clock: Clock
) -> None:
    stock(fake_x, 1)
    fake_x.fail(
        Failure("/2/users/", 503, {"title": "Service Unavailable", "detail": "Service Unavailable"})
    )

    assert poll() == 0
    saved = checkpoint(db)
    assert saved.last_error == "X answered 503: Service Unavailable"
    assert saved.next_poll_at == clock.now + timedelta(seconds=60)
    clock.advance(seconds=61)
    assert poll() == 1
    assert x_ids(db) == ["1001"]


def test_a_wrong_bearer_token_is_recorded_not_logged(
    fake_x: FakeX, poll: Poll, db: Db, x_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from pydantic import SecretStr

    stock(fake_x, 1)
    wrong = x_settings.model_copy(update={"x_bearer_token": SecretStr("not-the-token")})
    caplog.set_level("DEBUG")

    assert poll(settings=wrong) == 0

    assert checkpoint(db).last_error == "X answered 401: Unauthorized"
    assert "not-the-token" not in caplog.text
    assert x_ids(db) == []


def test_a_search_checkpoint_older_than_search_reaches_starts_from_the_reach(
    fake_x: FakeX, poll: Poll, db: Db, clock: Clock, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session, session.begin():
        account = accounts.update(
            session=session,
            handle="TransNordRail",
            change=AccountUpdate(search_terms=["TransNord"]),
        )
        session.add(
            Checkpoint(
                account_id=account.id,
                channel=Channel.SEARCH,
                since_id=str(snowflake(clock() - timedelta(days=9))),  # the worker was down
                next_poll_at=clock(),
            )
        )
    fake_x.users["102"] = RIDERS[1]
    fresh = [snowflake(clock() - timedelta(hours=h)) for h in (1, 2, 3)]
    fake_x.search = [post(i, f"TransNord late again ({i})", "102") for i in fresh]

    assert poll() >= 2  # three posts in pages of two

    searches = fake_x.requests_to("/2/tweets/search/recent")
    assert "since_id" not in searches[0].params
    reach = clock() - polling.SEARCH_REACH
    assert searches[0].params["start_time"] == reach.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [c.params.get("next_token") for c in searches] == [None, f"t{fresh[2]}"]
    assert checkpoint(db, Channel.SEARCH).since_id == str(fresh[0])
    assert sorted(x_ids(db)) == sorted(str(i) for i in fresh)


def test_a_page_that_cannot_be_stored_pauses_its_account_not_the_others(
    fake_x: FakeX,
    poll: Poll,
    db: Db,
    clock: Clock,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.x import service

    with sessions() as session, session.begin():
        accounts.update(
            session=session,
            handle="CamilleDurand_CEO",
            change=AccountUpdate(search_terms=["Durand"]),
        )
    stock(fake_x, 1)
    fake_x.search = [post(3001, "Camille Durand on the radio", "102")]
    real = service.record_page

    def failing_for_the_company(**kwargs: object) -> bool:
        claimed = kwargs["claimed"]
        if getattr(claimed, "account", "") == "transnordrail":
            raise RuntimeError("the classifier broke")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "record_page", failing_for_the_company)

    poll()

    company = checkpoint(db, Channel.MENTIONS)
    assert company.last_error == "storing a page failed: RuntimeError"
    assert company.next_poll_at == clock() + timedelta(seconds=60)
    assert company.since_id is None
    assert x_ids(db) == ["3001"]  # the CEO's search went on


@pytest.mark.skipif(
    not os.environ.get("AIGUILLEUR_TEST_DATABASE_URL"), reason="SKIP LOCKED is PostgreSQL's"
)
def test_two_workers_claim_different_accounts(
    sessions: sessionmaker[Session], clock: Clock, db: Db
) -> None:
    from app.x import service

    with sessions() as session, session.begin():
        accounts.update(
            session=session, handle="CamilleDurand_CEO", change=AccountUpdate(x_user_id="4242")
        )
        service.ensure_checkpoints(session=session, now=clock(), lookback=timedelta(hours=1))
    lease = timedelta(seconds=120)
    with sessions() as first, first.begin(), sessions() as second, second.begin():
        mine = service.claim(session=first, now=clock(), lease=lease, default_interval=60, limit=1)
        theirs = service.claim(session=second, now=clock(), lease=lease, default_interval=60)
    assert len(mine) == 1
    assert [c.account for c in theirs] != []
    assert mine[0].account not in [c.account for c in theirs]
