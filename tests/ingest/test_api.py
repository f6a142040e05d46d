"""Ingest through the HTTP API: one mention, repeats, batches, bad input."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.classify.service import Classifier
from app.ingest.models import Mention
from app.outbox.models import OutboxEvent
from app.tickets.models import Ticket, TicketEvent
from ml.model import TextClassifier
from tests.builders import CEO, DELAY_EN, DELAY_FR, PRAISE_EN, PRESS_EN, PROBLEM_EN, mention
from tests.conftest import Db


def test_a_delay_in_french_becomes_a_customer_service_ticket(client: TestClient, db: Db) -> None:
    response = client.post("/v1/mentions", json=mention("1", DELAY_FR))

    assert response.status_code == 201
    body = response.json()
    assert body["classification"]["label"] == "delay"
    assert body["classification"]["triage"] is False
    assert set(body["classification"]["probabilities"]) >= {"delay", "problem", "other"}
    assert body["classification"]["model_version"].startswith("aiguilleur-")
    assert body["routing"]["team"] == "customer-service"
    assert body["routing"]["rule"] == "disruption"
    assert body["routing"]["priority"] == "P2"
    assert body["lang"] == "fr"
    queue = client.get("/v1/teams/customer-service/tickets").json()
    assert [t["id"] for t in queue["items"]] == [body["routing"]["ticket_id"]]
    assert queue["items"][0]["label"] == "delay"


def test_a_repeat_answers_200_with_the_first_result_and_changes_nothing(
    client: TestClient, db: Db
) -> None:
    first = client.post("/v1/mentions", json=mention("42", DELAY_EN))
    repeat = client.post(
        "/v1/mentions", json=mention("42", "a different text must not be re-classified")
    )

    assert (first.status_code, repeat.status_code) == (201, 200)
    assert repeat.json() == first.json()
    assert db.count(Mention) == 1
    assert db.count(Ticket) == 1
    assert db.count(OutboxEvent) == 2  # ticket.created and mention.routed, once


def test_the_same_external_id_from_another_source_is_another_post(
    client: TestClient, db: Db
) -> None:
    client.post("/v1/mentions", json=mention("7", DELAY_EN))
    other = client.post(
        "/v1/mentions", json=mention("7", DELAY_EN, source="crm", conversation_id="c-7")
    )

    assert other.status_code == 201
    assert db.count(Mention) == 2


def test_ticket_creation_writes_its_outbox_event(client: TestClient, db: Db) -> None:
    body = client.post("/v1/mentions", json=mention("1", PROBLEM_EN)).json()

    event = db.one(select(OutboxEvent).where(OutboxEvent.type == "ticket.created"))
    assert event.subject_id == str(body["routing"]["ticket_id"])
    assert event.payload["data"]["ticket"]["team"] == "customer-service"
    assert event.payload["id"] == event.id
    created = db.one(select(TicketEvent))
    assert (created.kind, created.to_state) == ("created", "open")


def test_praise_is_stored_but_not_queued(client: TestClient, db: Db) -> None:
    body = client.post("/v1/mentions", json=mention("1", PRAISE_EN)).json()

    assert body["classification"]["label"] == "praise"
    assert body["routing"] == {
        "team": None,
        "rule": "no-queue",
        "priority": None,
        "ticket_id": None,
        "table_version": 1,
    }
    assert db.count(Ticket) == 0
    assert client.get(f"/v1/mentions/{body['id']}").json() == body


def test_press_goes_to_communications(client: TestClient) -> None:
    body = client.post("/v1/mentions", json=mention("1", PRESS_EN)).json()

    assert body["classification"]["label"] == "press"
    assert body["routing"]["team"] == "communications"


def test_a_service_request_to_the_ceo_gets_the_executive_lane(client: TestClient) -> None:
    body = client.post("/v1/mentions", json=mention("1", PROBLEM_EN, account=f"@{CEO}")).json()

    assert body["account"] == CEO.lower()
    assert body["routing"]["rule"] == "service-to-ceo"
    assert body["routing"]["priority"] == "P1"


def test_low_confidence_keeps_the_label_but_goes_to_triage(
    client: TestClient, classifier: Classifier, model: TextClassifier
) -> None:
    client.app.state.classifier = Classifier(model, threshold=0.999, margin=0.0)  # type: ignore[attr-defined]

    body = client.post("/v1/mentions", json=mention("1", DELAY_FR)).json()

    assert body["classification"]["label"] == "delay"
    assert body["classification"]["triage"] is True
    assert body["routing"]["team"] == "triage"
    assert body["routing"]["rule"] == "low-confidence"
    assert client.get("/v1/teams/triage/tickets").json()["items"][0]["label"] == "delay"


def test_a_follow_up_in_the_conversation_joins_the_open_ticket(client: TestClient, db: Db) -> None:
    first = client.post("/v1/mentions", json=mention("100", DELAY_EN, conversation_id="100")).json()
    follow_up = client.post(
        "/v1/mentions",
        json=mention(
            "101",
            "@TransNordRail still stuck, 70 minutes now, nobody tells us anything",
            conversation_id="100",
            in_reply_to_id="100",
        ),
    ).json()
    elsewhere = client.post("/v1/mentions", json=mention("200", PROBLEM_EN)).json()

    assert follow_up["routing"]["ticket_id"] == first["routing"]["ticket_id"]
    assert elsewhere["routing"]["ticket_id"] != first["routing"]["ticket_id"]
    queue = client.get("/v1/teams/customer-service/tickets").json()["items"]
    assert {t["id"]: t["mention_count"] for t in queue} == {
        first["routing"]["ticket_id"]: 2,
        elsewhere["routing"]["ticket_id"]: 1,
    }
    kinds = db.scalars(select(TicketEvent.kind).order_by(TicketEvent.id))
    assert kinds == ["created", "mention_added", "created"]
    tickets = select(OutboxEvent).where(OutboxEvent.type.like("ticket.%"))
    assert [e.type for e in db.scalars(tickets.order_by(OutboxEvent.occurred_at))] == [
        "ticket.created",
        "ticket.updated",
        "ticket.created",
    ]
    routed = db.scalars(select(OutboxEvent).where(OutboxEvent.type == "mention.routed"))
    assert len(routed) == 3
    assert {r.payload["data"]["routing"]["ticket_id"] for r in routed} == {
        first["routing"]["ticket_id"],
        elsewhere["routing"]["ticket_id"],
    }


def test_a_reply_without_conversation_id_follows_its_parent(client: TestClient) -> None:
    first = client.post("/v1/mentions", json=mention("300", DELAY_EN)).json()
    reply = client.post(
        "/v1/mentions",
        json=mention(
            "301", "@TransNordRail any update? still waiting on the platform", in_reply_to_id="300"
        ),
    ).json()

    assert reply["routing"]["ticket_id"] == first["routing"]["ticket_id"]


def test_batch_results_come_in_order_with_duplicates_reported(client: TestClient, db: Db) -> None:
    client.post("/v1/mentions", json=mention("b0", DELAY_EN))
    batch = [
        mention("b0", DELAY_EN),
        mention("b1", PROBLEM_EN),
        mention("b2", PRAISE_EN),
        mention("b1", PROBLEM_EN),
    ]

    response = client.post("/v1/mentions/batch", json={"mentions": batch})

    assert response.status_code == 200
    body = response.json()
    assert [(i["index"], i["status"], i["mention"]["external_id"]) for i in body["items"]] == [
        (0, "duplicate", "b0"),
        (1, "created", "b1"),
        (2, "created", "b2"),
        (3, "duplicate", "b1"),
    ]
    assert (body["created"], body["duplicates"]) == (2, 2)
    assert body["items"][1]["mention"]["id"] == body["items"][3]["mention"]["id"]
    assert body["items"][2]["mention"]["classification"]["label"] == "praise"
    assert db.count(Mention) == 3


def test_a_batch_is_one_transaction(client: TestClient, db: Db) -> None:
    batch = [mention("ok-1", DELAY_EN), mention("ok-2", PROBLEM_EN, account="not_watched")]

    response = client.post("/v1/mentions/batch", json={"mentions": batch})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_account"
    assert response.json()["error"]["details"] == [{"index": 1, "account": "not_watched"}]
    assert db.count(Mention) == 0


def test_a_batch_over_the_limit_is_refused(client: TestClient, db: Db) -> None:
    batch = [mention(f"m{i}", "hello") for i in range(1001)]

    response = client.post("/v1/mentions/batch", json={"mentions": batch})

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "batch_too_large"
    assert db.count(Mention) == 0


def test_a_full_batch_of_1000_is_accepted(client: TestClient, db: Db) -> None:
    texts = [DELAY_EN, PROBLEM_EN, PRAISE_EN, PRESS_EN, DELAY_FR]
    batch = [mention(f"m{i}", texts[i % 5]) for i in range(1000)]

    body = client.post("/v1/mentions/batch", json={"mentions": batch}).json()

    assert body["created"] == 1000
    assert db.count(Mention) == 1000
    assert db.count(Ticket) == 800


BAD_INPUTS = {
    "missing fields": ({"source": "api", "text": "hello"}, 422, "validation_failed"),
    "empty text": (mention("1", ""), 422, "validation_failed"),
    "blank text": (mention("1", "  \n\t "), 422, "validation_failed"),
    "text over 25,000 characters": (mention("1", "a" * 25_001), 422, "validation_failed"),
    "unknown account": (mention("1", DELAY_EN, account="nobody_here"), 422, "unknown_account"),
    "unknown field": (mention("1", DELAY_EN, colour="blue"), 422, "validation_failed"),
    "bad source": (mention("1", DELAY_EN, source="Bad Source!"), 422, "validation_failed"),
    "bad date": (mention("1", DELAY_EN, created_at="yesterday"), 422, "validation_failed"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_refused_and_nothing_is_stored(client: TestClient, db: Db, case: str) -> None:
    body, status, code = BAD_INPUTS[case]

    response = client.post("/v1/mentions", json=body)

    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert db.count(Mention) == 0


def test_malformed_json_is_a_400(client: TestClient, db: Db) -> None:
    response = client.post(
        "/v1/mentions", content=b'{"source": "api", ', headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_a_body_over_one_mebibyte_is_a_413(client: TestClient, db: Db) -> None:
    body = json.dumps(mention("1", DELAY_EN, raw={"padding": "x" * 1_100_000})).encode()

    response = client.post(
        "/v1/mentions", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert db.count(Mention) == 0


def test_a_streamed_body_over_the_limit_is_a_413(client: TestClient, db: Db) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"source": "api", "raw": {"padding": "'
        for _ in range(20):
            yield b"x" * 65_536
        yield b'"}}'

    response = client.post(
        "/v1/mentions", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert db.count(Mention) == 0


def test_an_unknown_mention_is_a_404(client: TestClient) -> None:
    response = client.get("/v1/mentions/999999")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_raw_payload_and_author_are_kept(client: TestClient, db: Db) -> None:
    raw = {"data": {"id": "1", "text": DELAY_EN}, "includes": {"users": [{"id": "9"}]}}
    author = {
        "handle": "@Rider_42",
        "id": "9",
        "name": "Rider",
        "followers": 1200,
        "verified": True,
    }

    body = client.post(
        "/v1/mentions",
        json=mention(
            "1", DELAY_EN, raw=raw, author=author, created_at="2026-11-20T08:15:00+01:00", lang="EN"
        ),
    ).json()

    assert body["author"] == {
        "handle": "Rider_42",
        "id": "9",
        "name": "Rider",
        "followers": 1200,
        "verified": True,
    }
    assert body["created_at"] == "2026-11-20T07:15:00Z"
    assert body["lang"] == "en"
    assert db.one(select(Mention.raw)) == raw


def test_another_author_in_the_same_conversation_is_another_ticket(client: TestClient) -> None:
    notice = client.post(
        "/v1/mentions", json=mention("n1", DELAY_EN, conversation_id="notice")
    ).json()
    other_rider = client.post(
        "/v1/mentions",
        json=mention(
            "n2",
            "@TransNordRail my train from York is cancelled too, what now?",
            conversation_id="notice",
            author={"handle": "another_rider"},
        ),
    ).json()

    assert other_rider["routing"]["ticket_id"] != notice["routing"]["ticket_id"]


def test_a_follow_up_joins_the_ticket_where_it_is_and_says_so(client: TestClient, db: Db) -> None:
    press = client.post("/v1/mentions", json=mention("p1", PRESS_EN, conversation_id="c")).json()
    delay = client.post("/v1/mentions", json=mention("p2", DELAY_EN, conversation_id="c")).json()

    assert press["routing"]["team"] == "communications"
    assert delay["routing"]["ticket_id"] == press["routing"]["ticket_id"]
    assert delay["routing"]["team"] == "communications"
    assert delay["routing"]["rule"] == "disruption"
    joined = db.scalars(select(TicketEvent).where(TicketEvent.kind == "mention_added"))
    assert joined[0].data["rule_team"] == "customer-service"


def test_a_more_urgent_follow_up_raises_the_priority(client: TestClient, db: Db) -> None:
    first = client.post("/v1/mentions", json=mention("u1", PROBLEM_EN, conversation_id="u")).json()
    client.post(
        "/v1/mentions",
        json=mention("u2", PROBLEM_EN + " Escalating.", conversation_id="u", account=CEO),
    )

    ticket = db.one(select(Ticket).where(Ticket.id == first["routing"]["ticket_id"]))
    assert (first["routing"]["priority"], ticket.priority) == ("P2", "P1")
    assert ticket.updated_at > ticket.opened_at


HOSTILE: dict[str, dict[str, Any] | bytes] = {
    "followers over 2^63": mention("1", DELAY_EN, author={"handle": "r", "followers": 2**63}),
    "handle of 65 characters": mention("1", DELAY_EN, author={"handle": "h" * 65}),
    "handle that is only @": mention("1", DELAY_EN, author={"handle": "@"}),
    "NUL in the text": mention("1", "late\x00train"),
    "NUL in the external id": mention("1\x00", DELAY_EN),
    "NUL deep in raw": mention("1", DELAY_EN, raw={"a": [{"b\x00": 1}]}),
    # json.loads, as FastAPI reads bodies, takes NaN and Infinity; no JSON column should.
    "NaN in raw": json.dumps(mention("1", DELAY_EN, raw={"a": [float("nan")]})).encode(),
    "Infinity in raw": json.dumps(mention("1", DELAY_EN, raw={"score": float("inf")})).encode(),
    "integer past 64 bits in raw": mention("1", DELAY_EN, raw={"id": 2**70}),
    "zero-width text": mention("1", "\u200b\u200b"),
    "external id with spaces around": mention(" 1 ", DELAY_EN),
    "created_at overflowing UTC": mention("1", DELAY_EN, created_at="9999-12-31T23:59:59-05:00"),
    "created_at in year 9999": mention("1", DELAY_EN, created_at="9999-01-01T00:00:00Z"),
    "created_at before 2000": mention("1", DELAY_EN, created_at="0001-01-01T00:00:00+05:00"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_input_is_a_422_and_stores_nothing(client: TestClient, db: Db, case: str) -> None:
    body = HOSTILE[case]
    response = (
        client.post("/v1/mentions", content=body, headers={"content-type": "application/json"})
        if isinstance(body, bytes)
        else client.post("/v1/mentions", json=body)
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    assert db.count(Mention) == 0


def test_out_of_range_paths_are_refused(client: TestClient) -> None:
    assert client.get(f"/v1/mentions/{2**31}").status_code == 422
    assert client.get("/v1/mentions/0").status_code == 422
    assert client.get("/v1/teams/Customer%00Service/tickets").status_code == 422


def test_invalid_utf8_is_malformed_json(client: TestClient) -> None:
    response = client.post(
        "/v1/mentions",
        content=b'{"text": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_a_failure_in_the_middle_of_a_batch_leaves_nothing(
    client: TestClient, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.tickets import service as tickets

    # Each new ticket's outbox event is made by `publication`, whether opened alone or in a batch.
    real, calls = tickets.publication, []

    def failing_on_the_third(**kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the disk is full")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tickets, "publication", failing_on_the_third)
    batch = [mention(f"t{i}", DELAY_EN) for i in range(5)]

    with TestClient(
        client.app, raise_server_exceptions=False, headers=client.headers
    ) as as_a_client_sees_it:
        response = as_a_client_sees_it.post("/v1/mentions/batch", json={"mentions": batch})

    assert response.status_code == 500
    assert response.json()["error"] == {
        "code": "internal_error",
        "message": "an unexpected error occurred",
        "details": None,
    }
    assert "disk" not in response.text
    assert (db.count(Mention), db.count(Ticket), db.count(OutboxEvent)) == (0, 0, 0)
