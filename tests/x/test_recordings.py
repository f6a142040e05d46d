"""The X connector through tweepy against real X API v2 exchanges, recorded by the tweepy project
(`../shared/x-api-recordings/`, read in place) and replayed by vcrpy: nothing leaves the machine.

`aiguilleur worker --once` turns the recorded mentions page of @Twitter into classified, routed
mentions and keeps the page's real `next_token` as its checkpoint; a reply queued on one of their
tickets goes out through `create_tweet`."""

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import vcr
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts
from app.accounts.models import Account
from app.accounts.schemas import AccountCreate, AccountUpdate
from app.classify.models import Classification
from app.classify.service import Classifier
from app.config import Settings
from app.ingest.models import Mention
from app.main import create_app
from app.routing.models import RoutingDecision
from app.worker import commands as worker_commands
from app.x import commands as x_commands
from app.x.models import Channel, Checkpoint, Reply, ReplyState
from tests.conftest import ROOT, Db, KeyMaker

RECORDINGS = ROOT.parent / "shared" / "x-api-recordings"
TWITTER_ID = "783214"  # the account whose mentions were recorded
RECORDED_NEXT_TOKEN = "7140dibdnow9c7btw423i3sy3u5zupmkcpofxcsmxj48j"


@dataclass
class Replay:
    cassette: Any = None
    sent: list[Any] = field(default_factory=list)  # what tweepy sent, as vcrpy saw it


@contextmanager
def replaying(name: str) -> Iterator[Replay]:
    """Replay a recording; a request it does not hold fails instead of reaching the network."""
    replay = Replay()

    def seen(request: Any) -> Any:
        # vcrpy filters the recorded requests through here too, and ours more than once.
        ours = any(name == "expansions" for name, _ in request.query) or b'"reply"' in (
            request.body or b""
        )
        if ours and all(request.uri != r.uri or request.body != r.body for r in replay.sent):
            replay.sent.append(request)
        return request

    player = vcr.VCR(
        record_mode="none",
        match_on=["method", "path"],
        decode_compressed_response=True,
        before_record_request=seen,
    )
    with player.use_cassette(str(RECORDINGS / name)) as cassette:
        replay.cassette = cassette
        yield replay


@pytest.fixture
def recorded_settings(settings: Settings) -> Settings:
    """Credentials that X's real host would refuse: vcrpy answers instead of X."""
    return settings.model_copy(
        update={
            "x_bearer_token": SecretStr("recorded-bearer"),
            "x_consumer_key": SecretStr("recorded-key"),
            "x_consumer_secret": SecretStr("recorded-secret"),
            "x_access_token": SecretStr("recorded-token"),
            "x_access_token_secret": SecretStr("recorded-token-secret"),
        }
    )


@pytest.fixture
def twitter_watched(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        accounts.create(
            session=session,
            account_in=AccountCreate(
                handle="Twitter", kind="company", display_name="Twitter", x_user_id=TWITTER_ID
            ),
        )


def worker_once(settings: Settings) -> None:
    assert worker_commands.run(argparse.Namespace(once=True), settings) == 0


@pytest.mark.usefixtures("twitter_watched")
def test_the_worker_turns_the_recorded_mentions_page_into_routed_mentions(
    recorded_settings: Settings, db: Db
) -> None:
    with replaying("test_client_get_users_mentions.yaml") as replay:
        worker_once(recorded_settings)

    assert replay.cassette.play_count == 1  # the page; its next page is not recorded
    first, second = (r for r in replay.sent if r.path == f"/2/users/{TWITTER_ID}/mentions")
    assert first.path == f"/2/users/{TWITTER_ID}/mentions"
    assert first.headers["Authorization"] == "Bearer recorded-bearer"
    assert ("pagination_token", RECORDED_NEXT_TOKEN) in second.query
    mentions = db.scalars(select(Mention).where(Mention.source == "x").order_by(Mention.id))
    assert len(mentions) == 10
    newest = next(m for m in mentions if m.external_id == "1578516295611748353")
    assert newest.text.startswith("@Twitter @TwitterSupport this is my ENTIRE feed")
    ids = {m.id for m in mentions}
    assert {c.mention_id for c in db.scalars(select(Classification))} >= ids
    decisions = db.scalars(select(RoutingDecision).where(RoutingDecision.mention_id.in_(ids)))
    assert len(decisions) == 10
    assert all(d.rule_name for d in decisions)
    assert any(d.ticket_id is not None for d in decisions)  # the requests among them
    checkpoint = db.one(
        select(Checkpoint)
        .join(Account, Account.id == Checkpoint.account_id)
        .where(Account.handle == "twitter", Checkpoint.channel == Channel.MENTIONS)
    )
    # The real page's token is kept: the sweep resumes there, and `since_id` moves only at its end.
    assert checkpoint.pagination_token == RECORDED_NEXT_TOKEN
    assert checkpoint.sweep_newest_id == "1578516295611748353"
    assert checkpoint.since_id is None
    assert checkpoint.posts_seen == 10


def test_the_recorded_search_becomes_mentions_of_the_account_with_those_terms(
    recorded_settings: Settings, db: Db, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session, session.begin():
        accounts.update(
            session=session, handle="TransNordRail", change=AccountUpdate(search_terms=["Tweepy"])
        )

    with replaying("test_client_search_recent_tweets.yaml") as replay:
        worker_once(recorded_settings)

    search = next(r for r in replay.sent if r.path == "/2/tweets/search/recent")
    assert ("query", '("Tweepy") -from:transnordrail -is:retweet') in search.query
    texts = db.scalars(select(Mention.text).where(Mention.source == "x"))
    assert len(texts) == 10
    assert all(text.endswith(" tweepy") for text in texts)


@pytest.mark.usefixtures("twitter_watched")
def test_a_reply_queued_on_a_recorded_mention_goes_out_through_create_tweet(
    recorded_settings: Settings,
    classifier: Classifier,
    make_key: KeyMaker,
    db: Db,
) -> None:
    with replaying("test_client_get_users_mentions.yaml"):
        worker_once(recorded_settings)
    ticket_id = db.one(
        select(RoutingDecision.ticket_id)
        .join(Mention, Mention.id == RoutingDecision.mention_id)
        .where(Mention.external_id == "1578516295611748353")
    )
    app = create_app(recorded_settings, classifier=classifier, with_worker=False)
    with TestClient(app, headers=make_key("admin")) as api:
        queued = api.post(f"/v1/tickets/{ticket_id}/replies", json={"text": "Test Tweet"})
    assert queued.status_code == 202, queued.text

    with replaying("test_client_create_and_delete_tweet.yaml") as replay:
        worker_once(recorded_settings)

    [posted] = [r for r in replay.sent if r.method == "POST"]
    assert posted.path == "/2/tweets"
    assert posted.headers["Authorization"].startswith("OAuth ")
    assert json.loads(posted.body) == {
        "text": "Test Tweet",
        "reply": {"in_reply_to_tweet_id": "1578516295611748353"},
    }
    reply = db.one(select(Reply))
    assert reply.state is ReplyState.SENT
    assert reply.x_post_id == "1456012973835788293"  # the id X gave the recorded post
    assert reply.in_reply_to_id == "1578516295611748353"


def test_x_check_prints_who_replies_go_out_as(
    recorded_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    writer_only = recorded_settings.model_copy(update={"x_bearer_token": None})

    with replaying("test_client_get_me.yaml"):
        status = x_commands.check_credentials(argparse.Namespace(), writer_only)

    out = capsys.readouterr().out
    assert "reply: replies go out as @TweepyDev (1072250532645998596)" in out
    assert "read: not configured" in out
    assert status == 1


def test_the_recordings_are_read_in_place_not_copied() -> None:
    copies = [p for p in Path(ROOT / "tests").rglob("*.yaml") if "interactions" in p.read_text()]
    assert copies == []
