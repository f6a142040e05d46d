"""X's Account Activity webhook: the CRC challenge, the body signature, tweet_create_events
become mentions, and one post seen through two channels is one mention."""

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from app.classify.service import Classifier
from app.config import Settings
from app.ingest.models import Mention
from app.main import create_app
from tests.builders import DELAY_EN
from tests.conftest import Db, KeyMaker

SECRET = "consumer-secret"
COMPANY_X_ID = "1500000000000000001"  # @TransNordRail in the example configuration


@pytest.fixture
def x(
    settings: Settings, classifier: Classifier, configured: None, make_key: KeyMaker
) -> Iterator[TestClient]:
    configured_settings = settings.model_copy(update={"x_consumer_secret": SecretStr(SECRET)})
    app: FastAPI = create_app(configured_settings, classifier=classifier, with_worker=False)
    with TestClient(app, headers=make_key("admin", name="admin")) as client:
        yield client


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    return {
        "x-twitter-webhooks-signature": "sha256=" + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


def tweet(tweet_id: str, text: str, author_id: str = "42", **extra: Any) -> dict[str, Any]:
    return {
        "id_str": tweet_id,
        "text": text,
        "created_at": "Mon Nov 23 07:02:11 +0000 2026",
        "lang": "en",
        "user": {
            "id_str": author_id,
            "screen_name": "rider_on_x",
            "name": "A rider",
            "followers_count": 310,
            "verified": False,
        },
        **extra,
    }


def activity(*tweets: dict[str, Any]) -> bytes:
    return json.dumps({"for_user_id": COMPANY_X_ID, "tweet_create_events": list(tweets)}).encode()


def test_the_crc_challenge_is_answered_with_the_hmac_of_the_token(x: TestClient) -> None:
    response = x.get("/v1/x/webhook", params={"crc_token": "crc-challenge-1"})

    assert response.status_code == 200
    # base64(HMAC-SHA256("consumer-secret", "crc-challenge-1")), computed once by hand.
    assert response.json() == {
        "response_token": "sha256=DX07JvdVVQPouN3VhsF76r2C8NxzzkMqPl0dTNzjbt8="
    }


def test_a_post_to_the_company_becomes_a_mention(x: TestClient, db: Db) -> None:
    body = activity(tweet("1860000000000000001", f"@TransNordRail {DELAY_EN}"))

    response = x.post("/v1/x/webhook", content=body, headers=signed(body))

    assert response.json() == {"created": 1, "duplicates": 0}
    mention = db.one(select(Mention))
    assert (mention.source, mention.external_id) == ("x", "1860000000000000001")
    assert (mention.author_handle, mention.author_followers) == ("rider_on_x", 310)
    assert mention.posted_at.isoformat() == "2026-11-23T07:02:11+00:00"
    routed = x.get(f"/v1/mentions/{mention.id}").json()
    assert routed["routing"]["team"] == "customer-service"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-twitter-webhooks-signature": "sha256=" + "A" * 44},
        {"x-twitter-webhooks-signature": "garbage"},
    ],
)
def test_a_bad_or_missing_signature_is_a_401_and_stores_nothing(
    x: TestClient, db: Db, headers: dict[str, str]
) -> None:
    body = activity(tweet("1", f"@TransNordRail {DELAY_EN}"))

    response = x.post("/v1/x/webhook", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert db.count(Mention) == 0


def test_a_signature_for_another_body_is_refused(x: TestClient, db: Db) -> None:
    genuine = activity(tweet("1", "@TransNordRail hello"))
    forged = activity(tweet("1", "@TransNordRail something else"))

    response = x.post("/v1/x/webhook", content=forged, headers=signed(genuine))

    assert response.status_code == 401
    assert db.count(Mention) == 0


def test_the_same_post_through_two_channels_is_one_mention(x: TestClient, db: Db) -> None:
    body = activity(tweet("1860000000000000002", f"@TransNordRail {DELAY_EN}"))
    through_api = x.post(
        "/v1/mentions",
        json={
            "source": "x",
            "external_id": "1860000000000000002",
            "account": "TransNordRail",
            "author": {"handle": "rider_on_x"},
            "text": f"@TransNordRail {DELAY_EN}",
        },
    )

    through_webhook = x.post("/v1/x/webhook", content=body, headers=signed(body))
    replayed = x.post("/v1/x/webhook", content=body, headers=signed(body))

    assert through_api.status_code == 201
    assert through_webhook.json() == {"created": 0, "duplicates": 1}
    assert replayed.json() == {"created": 0, "duplicates": 1}
    assert db.count(Mention) == 1


def test_the_company_s_own_posts_and_other_accounts_are_left_out(x: TestClient, db: Db) -> None:
    own = activity(tweet("10", "Our trains run normally today", author_id=COMPANY_X_ID))
    elsewhere = json.dumps(
        {"for_user_id": "999", "tweet_create_events": [tweet("11", "hi")]}
    ).encode()
    likes = json.dumps({"for_user_id": COMPANY_X_ID, "favorite_events": [{}]}).encode()

    for body in (own, elsewhere, likes):
        response = x.post("/v1/x/webhook", content=body, headers=signed(body))
        assert response.json() == {"created": 0, "duplicates": 0}
    assert db.count(Mention) == 0


def test_a_long_post_keeps_its_full_text(x: TestClient, db: Db) -> None:
    full = f"@TransNordRail {DELAY_EN} " + "and still nothing on the app. " * 5
    body = activity(
        tweet("12", full[:140] + "…", truncated=True, extended_tweet={"full_text": full})
    )

    x.post("/v1/x/webhook", content=body, headers=signed(body))

    assert db.one(select(Mention)).text == full


def test_without_a_consumer_secret_the_webhook_is_not_there(client: TestClient) -> None:
    assert client.get("/v1/x/webhook", params={"crc_token": "t"}).status_code == 404
