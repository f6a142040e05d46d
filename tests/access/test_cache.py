"""The cache of checked keys: a burst of requests reads a key once; a revocation holds within
`key_cache_seconds`; nothing but valid keys is remembered."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.access import cache, service
from app.access.cache import KeyCache
from app.access.service import Principal
from app.db import make_sessionmaker
from tests.conftest import KeyMaker

ADMIN = Principal(key_id="k1", name="crm", scopes=frozenset({"admin"}))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_remembered_for_the_delay_and_no_longer() -> None:
    clock = Clock()
    keys = KeyCache(5, clock=clock)

    keys.put("aig_k1_secret", ADMIN)
    clock.now += 4.9
    remembered = keys.get("aig_k1_secret")
    clock.now += 0.1

    assert remembered == ADMIN
    assert keys.get("aig_k1_secret") is None
    assert keys.get("aig_k1_other-secret") is None


def test_a_delay_of_zero_remembers_nothing() -> None:
    keys = KeyCache(0)

    keys.put("aig_k1_secret", ADMIN)

    assert keys.get("aig_k1_secret") is None


def test_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "MAX_KEYS", 3)
    clock = Clock()
    keys = KeyCache(5, clock=clock)

    for i in range(10):
        keys.put(f"aig_k{i}_secret", ADMIN)

    assert len(keys._entries) <= 3
    assert keys.get("aig_k9_secret") == ADMIN


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    real, reads = service.verify, []

    def counted(**kwargs: object) -> Principal | None:
        reads.append(str(kwargs["token"]))
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "verify", counted)
    return reads


def test_a_burst_of_requests_reads_the_key_once_and_a_revocation_holds_after_the_delay(
    anonymous: TestClient, make_key: KeyMaker, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    anonymous.app.state.keys = KeyCache(5, clock=clock)  # type: ignore[attr-defined]
    headers = make_key("admin", name="burst")
    key_id = headers["Authorization"].split("_")[1]
    reads = count_reads(monkeypatch)

    statuses = [anonymous.get("/v1/teams", headers=headers).status_code for _ in range(5)]
    reads_in_the_burst = len(reads)
    with make_sessionmaker(engine)() as session, session.begin():
        service.revoke(session=session, key_id=key_id)
    within_the_delay = anonymous.get("/v1/teams", headers=headers).status_code
    clock.now += 5
    after_it = anonymous.get("/v1/teams", headers=headers)

    assert statuses == [200] * 5
    assert reads_in_the_burst == 1
    assert within_the_delay == 200
    assert after_it.status_code == 401
    assert after_it.json()["error"]["code"] == "unauthenticated"


def test_a_refused_key_is_read_again_every_time(
    anonymous: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = count_reads(monkeypatch)
    wrong = {"Authorization": "Bearer aig_0123456789ab_not-the-secret"}

    statuses = [anonymous.get("/v1/teams", headers=wrong).status_code for _ in range(3)]

    assert statuses == [401] * 3
    assert len(reads) == 3
