"""X fixtures: the local X stand-in, settings pointing at it, and a clock the tests move."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.classify.service import Classifier
from app.config import Settings
from app.db import make_sessionmaker
from tests.x.fake_x import BEARER, FakeX, running_fake_x

COMPANY_X_ID = "1500000000000000001"  # @TransNordRail in the example configuration


@pytest.fixture
def fake_x() -> Iterator[FakeX]:
    with running_fake_x() as fake:
        yield fake


@pytest.fixture
def x_settings(settings: Settings, fake_x: FakeX) -> Settings:
    return settings.model_copy(
        update={
            "x_api_url": fake_x.url,
            "x_bearer_token": SecretStr(BEARER),
            "x_consumer_key": SecretStr("consumer-key"),
            "x_consumer_secret": SecretStr("consumer-secret"),
            "x_access_token": SecretStr("access-token"),
            "x_access_token_secret": SecretStr("access-token-secret"),
            "x_timeout_seconds": 5.0,
        }
    )


@pytest.fixture
def sessions(engine: Engine, configured: None) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


class Clock:
    """Now, as the test says; starts at a fixed moment."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Models:
    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier


@pytest.fixture
def models(classifier: Classifier) -> Models:
    return Models(classifier)
