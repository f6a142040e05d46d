"""Webhooks to teams' CRMs: endpoints, signed deliveries, retries on a controlled clock, 410,
Retry-After, replays, lost leases, and the inbound signed receiver. The CRM is a local server
that fails on purpose; every URL outside loopback is refused before any connection."""

import json
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from standardwebhooks.webhooks import Webhook

from app.classify.service import Classifier
from app.config import Settings
from app.db import make_sessionmaker, utcnow
from app.delivery import sending, service, signing
from app.delivery.models import Delivery, DeliveryAttempt, WebhookEndpoint
from app.main import create_app
from app.outbox.models import OutboxEvent
from tests.builders import DELAY_EN, mention
from tests.conftest import Db, KeyMaker
from tests.delivery.netguard import loopback_only, resolver_for  # noqa: F401 - a fixture
from tests.delivery.receiver import Behaviour, Receiver, running_receiver

pytestmark = pytest.mark.usefixtures("loopback_only")


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhooks_allow_loopback": True,
            "delivery_lease_seconds": 2.0,
            "inbound_webhook_secrets": {"crm": INBOUND_SECRET},
        }
    )


INBOUND_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def hooks(
    hook_settings: Settings, classifier: Classifier, configured: None, make_key: KeyMaker
) -> Iterator[TestClient]:
    app: FastAPI = create_app(hook_settings, classifier=classifier, with_worker=False)
    with TestClient(app, headers=make_key("admin", name="admin")) as client:
        app.state.resolver = resolver_for({"crm.example.com": ["93.184.216.34"]})
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as crm:
        yield crm


def register(client: TestClient, url: str, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/teams/customer-service/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


Clock = Callable[[], datetime]


def deliver(engine: Engine, settings: Settings, clock: Clock = utcnow) -> int:
    sessions = make_sessionmaker(engine)
    return sending.run(sessions=sessions, settings=settings, clock=clock, rng=random.Random(7))


def at(moment: datetime) -> Clock:
    return lambda: moment


def test_an_endpoint_is_registered_with_a_secret_shown_once(hooks: TestClient) -> None:
    created = register(hooks, "https://crm.example.com/hooks", event_types=["ticket.created"])

    assert created["secret"].startswith("whsec_")
    assert len(signing.parse_secret(created["secret"])) == 32
    listed = hooks.get("/v1/teams/customer-service/webhooks").json()
    assert [e["url"] for e in listed] == ["https://crm.example.com/hooks"]
    assert "secret" not in listed[0]
    assert created["secret"] not in json.dumps(listed)


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/hooks",
        "https://169.254.169.254/latest/meta-data",
        "ftp://crm.example.com/hooks",
        "https://user:pass@crm.example.com/hooks",
    ],
)
def test_an_endpoint_inside_our_network_is_refused(hooks: TestClient, url: str, db: Db) -> None:
    response = hooks.post("/v1/teams/customer-service/webhooks", json={"url": url})

    assert response.status_code == 422
    assert db.count(WebhookEndpoint) == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hooks", "https://[::1]/hooks"])
def test_loopback_needs_the_development_setting(client: TestClient, url: str) -> None:
    response = client.post("/v1/teams/customer-service/webhooks", json={"url": url})

    assert response.status_code == 422


def test_another_team_s_endpoints_are_not_found(hooks: TestClient, make_key: KeyMaker) -> None:
    created = register(hooks, "https://crm.example.com/hooks")
    other = make_key("queue:communications")
    base = "/v1/teams/customer-service/webhooks"

    assert hooks.get(base, headers=other).status_code == 404
    assert hooks.patch(f"{base}/{created['id']}", json={}, headers=other).status_code == 404
    assert hooks.delete(f"{base}/{created['id']}", headers=other).status_code == 404


def test_events_arrive_signed_as_standard_webhooks(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings, db: Db
) -> None:
    secret = register(hooks, receiver.url)["secret"]
    ticket_id = hooks.post("/v1/mentions", json=mention("1", DELAY_EN)).json()["routing"][
        "ticket_id"
    ]

    assert deliver(engine, hook_settings) == 2

    types = sorted(json.loads(r.body)["type"] for r in receiver.received)
    assert types == ["mention.routed", "ticket.created"]
    for request in receiver.received:
        Webhook(secret).verify(request.body, request.headers)  # the reference implementation
        payload = json.loads(request.body)
        assert request.headers["webhook-id"] == payload["id"]
        assert payload["version"] == 1
    created = next(json.loads(r.body) for r in receiver.received if b"ticket.created" in r.body)
    assert created["data"]["ticket"]["id"] == ticket_id
    assert all(d.state == "delivered" for d in db.scalars(select(Delivery)))
    assert deliver(engine, hook_settings) == 0


def test_only_the_chosen_event_types_are_sent(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings
) -> None:
    register(hooks, receiver.url, event_types=["ticket.created"])
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))

    deliver(engine, hook_settings)

    assert [json.loads(r.body)["type"] for r in receiver.received] == ["ticket.created"]


def test_failures_are_retried_on_the_schedule_with_the_same_id(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings, db: Db
) -> None:
    register(hooks, receiver.url, event_types=["ticket.created"])
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    receiver.script = [Behaviour(status=500), Behaviour(status=503)]
    start = utcnow()

    assert deliver(engine, hook_settings, at(start)) == 1  # 500
    assert deliver(engine, hook_settings, at(start + timedelta(seconds=3))) == 0  # not yet
    assert deliver(engine, hook_settings, at(start + timedelta(seconds=7))) == 1  # 503
    assert deliver(engine, hook_settings, at(start + timedelta(minutes=3))) == 0
    assert deliver(engine, hook_settings, at(start + timedelta(minutes=7))) == 1  # 200

    assert len(set(receiver.ids())) == 1
    [delivery] = db.scalars(select(Delivery))
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 3, 200)
    attempts = db.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id))
    assert [a.status_code for a in attempts] == [500, 503, 200]


def test_retry_after_is_honoured(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings, db: Db
) -> None:
    register(hooks, receiver.url, event_types=["ticket.created"])
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    receiver.script = [Behaviour(status=429, headers={"Retry-After": "600"})]
    start = utcnow()

    deliver(engine, hook_settings, at(start))

    [delivery] = db.scalars(select(Delivery))
    assert delivery.next_attempt_at - start >= timedelta(seconds=600)


def test_410_gone_disables_the_endpoint_and_says_so(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings, db: Db
) -> None:
    register(hooks, receiver.url, event_types=["ticket.created"])
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    receiver.script = [Behaviour(status=410)]

    deliver(engine, hook_settings)

    [endpoint] = hooks.get("/v1/teams/customer-service/webhooks").json()
    assert (endpoint["enabled"], endpoint["disabled_reason"]) == (
        False,
        "the endpoint answered 410 Gone",
    )
    [delivery] = db.scalars(select(Delivery))
    assert delivery.state == "failed"
    assert db.scalars(select(OutboxEvent).where(OutboxEvent.type == "webhook.disabled"))


def test_after_the_last_attempt_it_fails_and_can_be_replayed(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings
) -> None:
    created = register(hooks, receiver.url, event_types=["ticket.created"])
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    receiver.default = Behaviour(status=500)
    moment = utcnow()
    for _ in range(len(service.RETRY_SCHEDULE) + 1):
        deliver(engine, hook_settings, at(moment))
        moment += timedelta(hours=13)
    base = f"/v1/teams/customer-service/webhooks/{created['id']}"
    [failed] = hooks.get(f"{base}/deliveries", params={"state": "failed"}).json()
    assert failed["attempts"] == len(service.RETRY_SCHEDULE) + 1
    assert len(failed["history"]) == failed["attempts"]
    receiver.default = Behaviour(status=204)

    assert hooks.post(f"{base}/replay-failed").json() == {"replayed": 1}
    deliver(engine, hook_settings)

    [done] = hooks.get(f"{base}/deliveries").json()
    assert done["state"] == "delivered"
    assert len(set(receiver.ids())) == 1


def test_one_delivery_replays_on_demand(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings
) -> None:
    created = register(hooks, receiver.url, event_types=["ticket.created"])
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    deliver(engine, hook_settings)
    base = f"/v1/teams/customer-service/webhooks/{created['id']}"
    [delivery] = hooks.get(f"{base}/deliveries").json()

    assert hooks.post(f"/v1/deliveries/{delivery['id']}/replay").status_code == 200
    deliver(engine, hook_settings)

    assert receiver.ids() == [delivery["event_id"]] * 2


def test_timeouts_and_dropped_connections_are_attempts_that_failed(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings, db: Db
) -> None:
    register(hooks, receiver.url, event_types=["ticket.created"])
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    receiver.script = [Behaviour(drop=True), Behaviour(delay=2.0)]
    fast = hook_settings.model_copy(update={"webhook_timeout_seconds": 0.5})
    start = utcnow()

    deliver(engine, fast, at(start))
    deliver(engine, fast, at(start + timedelta(seconds=7)))

    attempts = db.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id))
    assert [a.status_code for a in attempts] == [None, None]
    assert all(a.error for a in attempts)


def test_a_redirect_is_not_followed(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings, db: Db
) -> None:
    register(hooks, receiver.url, event_types=["ticket.created"])
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    receiver.script = [Behaviour(status=302, headers={"Location": "http://169.254.169.254/"})]

    deliver(engine, hook_settings)

    [delivery] = db.scalars(select(Delivery))
    assert (delivery.state, delivery.last_status) == ("pending", 302)


def test_a_lost_claim_is_taken_again_after_its_lease(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings, db: Db
) -> None:
    register(hooks, receiver.url, event_types=["ticket.created"])
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    sessions = make_sessionmaker(engine)
    start = utcnow()
    with sessions() as session, session.begin():
        service.dispatch(session=session, now=start, limit=10)
    with sessions() as session, session.begin():  # a worker claims, then dies before sending
        [lost] = service.claim(session=session, now=start, limit=10, lease=timedelta(seconds=2))

    assert deliver(engine, hook_settings, at(start + timedelta(seconds=1))) == 0
    assert deliver(engine, hook_settings, at(start + timedelta(seconds=3))) == 1
    with sessions() as session, session.begin():  # the dead worker's late word is ignored
        late = service.Outcome(status=500, duration_ms=1.0)
        assert (
            service.record(
                session=session,
                claimed=lost,
                outcome=late,
                now=utcnow(),
                jitter=1.0,
                disable_after=timedelta(days=5),
            )
            is None
        )

    [delivery] = db.scalars(select(Delivery))
    assert (delivery.state, delivery.attempts) == ("delivered", 2)
    assert len(receiver.received) == 1


def test_a_rotated_secret_signs_beside_the_old_one(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings
) -> None:
    created = register(hooks, receiver.url, event_types=["ticket.created"])
    rotated = hooks.post(
        f"/v1/teams/customer-service/webhooks/{created['id']}/rotate-secret"
    ).json()
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))

    deliver(engine, hook_settings)

    [request] = receiver.received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(created["secret"]).verify(request.body, request.headers)
    Webhook(rotated["secret"]).verify(request.body, request.headers)


def signed(
    body: bytes, *, message_id: str = "msg_1", timestamp: int | None = None
) -> dict[str, str]:
    return {
        **signing.headers(
            secrets=[INBOUND_SECRET],
            message_id=message_id,
            timestamp=int(time.time()) if timestamp is None else timestamp,
            body=body,
        ),
        "content-type": "application/json",
    }


def inbound_body(external_id: str = "c1") -> bytes:
    post = mention(external_id, DELAY_EN)
    del post["source"]
    return json.dumps({"mentions": [post]}).encode()


def test_a_signed_inbound_webhook_is_ingested_once(hooks: TestClient, db: Db) -> None:
    body = inbound_body()

    first = hooks.post("/v1/webhooks/crm", content=body, headers=signed(body))
    replayed = hooks.post("/v1/webhooks/crm", content=body, headers=signed(body))

    assert first.status_code == 200, first.text
    assert first.json()["items"][0]["mention"]["source"] == "crm"
    assert replayed.status_code == 409
    assert replayed.json()["error"]["code"] == "replayed_webhook"


@pytest.mark.parametrize(
    "tamper",
    ["body", "signature", "old", "future", "missing"],
)
def test_a_bad_inbound_webhook_is_refused_and_stores_nothing(
    hooks: TestClient, db: Db, tamper: str
) -> None:
    from app.ingest.models import Mention

    body = inbound_body()
    headers = signed(body)
    if tamper == "body":
        body = inbound_body("c2")
    elif tamper == "signature":
        headers["webhook-signature"] = "v1," + "A" * 44
    elif tamper == "old":
        headers = signed(body, timestamp=int(time.time()) - 330)
    elif tamper == "future":
        headers = signed(body, timestamp=int(time.time()) + 330)
    else:
        del headers["webhook-signature"]

    response = hooks.post("/v1/webhooks/crm", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert db.count(Mention) == 0


def test_an_unknown_inbound_source_is_a_404(hooks: TestClient) -> None:
    body = inbound_body()

    assert hooks.post("/v1/webhooks/nobody", content=body, headers=signed(body)).status_code == 404


def test_an_endpoint_failing_for_days_is_disabled(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings, db: Db
) -> None:
    register(hooks, receiver.url, event_types=["ticket.created"])
    receiver.default = Behaviour(status=503)
    start = utcnow()
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    deliver(engine, hook_settings, at(start))  # the first failure starts the clock
    hooks.post("/v1/mentions", json=mention("2", DELAY_EN, author={"handle": "b"}))
    deliver(engine, hook_settings, at(start + timedelta(hours=119)))
    assert hooks.get("/v1/teams/customer-service/webhooks").json()[0]["enabled"] is True

    deliver(engine, hook_settings, at(start + timedelta(hours=121)))

    [endpoint] = hooks.get("/v1/teams/customer-service/webhooks").json()
    assert endpoint["enabled"] is False
    assert endpoint["disabled_reason"].startswith("every attempt failed since")
    [disabled] = db.scalars(select(OutboxEvent).where(OutboxEvent.type == "webhook.disabled"))
    assert disabled.payload["data"]["endpoint_id"] == endpoint["id"]


def test_concurrent_claims_never_hand_a_delivery_to_two_workers(
    hooks: TestClient, engine: Engine
) -> None:
    register(hooks, "https://crm.example.com/hooks")
    for i in range(100):
        hooks.post("/v1/mentions", json=mention(str(i), DELAY_EN, author={"handle": f"r{i}"}))
    sessions = make_sessionmaker(engine)
    now = utcnow()
    with sessions() as session, session.begin():
        service.dispatch(session=session, now=now, limit=1_000)

    def claim_all(_: int) -> list[int]:
        mine: list[int] = []
        while True:
            with sessions() as session, session.begin():
                batch = service.claim(session=session, now=now, limit=7, lease=timedelta(minutes=5))
            if not batch:
                return mine
            mine += [claimed.delivery_id for claimed in batch]

    with ThreadPoolExecutor(4) as pool:
        per_worker = list(pool.map(claim_all, range(4)))

    everything = [d for claimed in per_worker for d in claimed]
    assert len(everything) == len(set(everything)) == 200  # ticket.created + mention.routed


@pytest.mark.parametrize(
    "answer",
    [
        Behaviour(status=503, headers={"Retry-After": "99999999999999"}),
        Behaviour(status=500, body=b"oops\x00binary"),
    ],
)
def test_an_odd_answer_is_recorded_and_spoils_nothing_else(
    hooks: TestClient,
    receiver: Receiver,
    engine: Engine,
    hook_settings: Settings,
    db: Db,
    answer: Behaviour,
) -> None:
    register(hooks, receiver.url)  # two events: ticket.created and mention.routed
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    receiver.script = [answer]

    assert deliver(engine, hook_settings) == 2

    states = sorted(d.state for d in db.scalars(select(Delivery)))
    assert states == ["delivered", "pending"]
    assert len(db.scalars(select(DeliveryAttempt))) == 2


def test_events_wait_for_a_disabled_endpoint(
    hooks: TestClient, receiver: Receiver, engine: Engine, hook_settings: Settings
) -> None:
    created = register(hooks, receiver.url, event_types=["ticket.created"])
    base = f"/v1/teams/customer-service/webhooks/{created['id']}"
    hooks.patch(base, json={"enabled": False})
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))

    assert deliver(engine, hook_settings) == 0
    hooks.patch(base, json={"enabled": True})
    assert deliver(engine, hook_settings) == 1

    assert [json.loads(r.body)["type"] for r in receiver.received] == ["ticket.created"]


def test_a_pass_claims_what_it_can_send_within_half_a_lease(hook_settings: Settings) -> None:
    slow = hook_settings.model_copy(
        update={"delivery_lease_seconds": 60, "webhook_timeout_seconds": 15}
    )

    assert sending.claim_size(slow) == 16  # 8 at once, 2 rounds of 15 s in 30 s
    assert sending.claim_size(slow.model_copy(update={"webhook_timeout_seconds": 45})) == 8


def test_a_webhook_id_too_long_is_a_422(hooks: TestClient) -> None:
    body = inbound_body()

    response = hooks.post(
        "/v1/webhooks/crm", content=body, headers=signed(body, message_id="m" * 101)
    )

    assert response.status_code == 422


def test_another_team_s_deliveries_cannot_be_replayed_or_rotated(
    hooks: TestClient,
    receiver: Receiver,
    engine: Engine,
    hook_settings: Settings,
    make_key: KeyMaker,
) -> None:
    created = register(hooks, receiver.url, event_types=["ticket.created"])
    hooks.post("/v1/mentions", json=mention("1", DELAY_EN))
    deliver(engine, hook_settings)
    base = f"/v1/teams/customer-service/webhooks/{created['id']}"
    [delivery] = hooks.get(f"{base}/deliveries").json()
    other = make_key("queue:communications")

    assert hooks.post(f"/v1/deliveries/{delivery['id']}/replay", headers=other).status_code == 404
    assert hooks.post(f"{base}/rotate-secret", headers=other).status_code == 404
    assert hooks.post(f"{base}/replay-failed", headers=other).status_code == 404
    assert hooks.get(f"{base}/deliveries", headers=other).status_code == 404
