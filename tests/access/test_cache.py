"""The cache of checked keys: a burst of requests reads a key once; a revocation holds within
`key_cache_seconds`; nothing but valid keys is remembered."""

import asyncio

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


def run_checks(
    keys: KeyCache, tokens: list[str], answer: Principal | None
) -> tuple[list[Principal | None], int]:
    """Check the tokens concurrently against a verification that takes a moment."""
    verified = 0

    async def verify() -> Principal | None:
        nonlocal verified
        verified += 1
        await asyncio.sleep(0.01)
        return answer

    async def main() -> list[Principal | None]:
        return list(await asyncio.gather(*(keys.check(token, verify) for token in tokens)))

    return asyncio.run(main()), verified


def test_requests_arriving_during_a_check_share_it() -> None:
    keys = KeyCache(5)

    answers, verified = run_checks(keys, ["aig_a_1"] * 20 + ["aig_b_2"] * 3, ADMIN)

    assert answers == [ADMIN] * 23
    assert verified == 2
    assert keys.get("aig_a_1") == ADMIN


def test_a_refused_key_is_checked_again_once_the_shared_check_is_over() -> None:
    keys = KeyCache(5)

    first, verified_first = run_checks(keys, ["aig_x_wrong"] * 5, None)
    second, verified_second = run_checks(keys, ["aig_x_wrong"], None)

    assert first == [None] * 5
    assert (verified_first, verified_second) == (1, 1)
    assert second == [None]


def test_with_a_delay_of_zero_each_request_checks() -> None:
    keys = KeyCache(0)

    answers, verified = run_checks(keys, ["aig_a_1"] * 4, ADMIN)

    assert answers == [ADMIN] * 4
    assert verified == 4


def test_a_request_that_goes_away_does_not_cancel_the_others_check() -> None:
    keys = KeyCache(5)

    async def verify() -> Principal | None:
        await asyncio.sleep(0.02)
        return ADMIN

    async def main() -> Principal | None:
        leaving = asyncio.ensure_future(keys.check("aig_a_1", verify))
        staying = asyncio.ensure_future(keys.check("aig_a_1", verify))
        await asyncio.sleep(0.005)
        leaving.cancel()
        return await staying

    assert asyncio.run(main()) == ADMIN


def test_the_delay_counts_from_the_start_of_a_slow_check() -> None:
    clock = Clock()
    keys = KeyCache(5, clock=clock)

    async def slow_verify() -> Principal | None:
        clock.now += 3  # a revocation committed now is not seen by this check
        return ADMIN

    assert asyncio.run(keys.check("aig_k1_secret", slow_verify)) == ADMIN
    clock.now += 2

    assert keys.get("aig_k1_secret") is None
