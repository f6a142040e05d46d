"""API keys over HTTP: 401 without a valid key, 403 without the scope, 404 for another team's
queue, ticket or mention, and nothing changed by a refused call."""

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, select

from app.access import service as access
from app.db import Base, make_sessionmaker
from app.models import import_all
from app.tickets.models import Ticket, TicketEvent
from tests.access.keys import expire_cached_keys
from tests.builders import DELAY_EN, PRESS_EN, mention
from tests.conftest import Db, KeyMaker

CUSTOMER_SERVICE = "customer-service"
COMMUNICATIONS = "communications"
TEAMS = (CUSTOMER_SERVICE, COMMUNICATIONS, "investor-relations", "hr", "triage")

Rows = dict[str, list[tuple[Any, ...]]]


def rows(engine: Engine) -> Rows:
    """Every row of every table: two equal snapshots mean a call changed nothing."""
    import_all()
    with make_sessionmaker(engine, read_only=True)() as session:
        return {
            table.name: [
                tuple(row)
                for row in session.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


def post_mention(client: TestClient, external_id: str, text: str) -> dict[str, Any]:
    response = client.post("/v1/mentions", json=mention(external_id, text))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def open_ticket(client: TestClient) -> tuple[int, int]:
    """A customer-service ticket (and its mention), posted with the admin key."""
    posted = post_mention(client, "1", DELAY_EN)
    assert posted["routing"]["team"] == CUSTOMER_SERVICE
    return posted["routing"]["ticket_id"], posted["id"]


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def error_of(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def anonymised(response: Response, target: str) -> str:
    """The body with the id or slug asked for blanked out, to compare two 404s."""
    return re.sub(rf"\b{re.escape(target)}\b", "<target>", json.dumps(response.json()))


# --- 401: no valid key ------------------------------------------------------------------------


def bad_token(kind: str, *, make_key: KeyMaker, engine: Engine, anonymous: TestClient) -> str:
    """A token that must not authenticate; a real key is shown to work before it is spoiled."""
    if kind == "garbage":
        return "not-a-key"
    if kind == "unknown":
        return f"aig_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    token = token_of(make_key("admin", name="spoiled"))
    assert anonymous.get("/v1/teams", headers={"X-API-Key": token}).status_code == 200
    key_id = token.split("_")[1]
    if kind == "wrong-secret":
        return f"aig_{key_id}_{secrets.token_urlsafe(32)}"
    assert kind == "revoked"
    with make_sessionmaker(engine)() as session, session.begin():
        access.revoke(session=session, key_id=key_id)
    expire_cached_keys(anonymous)
    return token


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
@pytest.mark.parametrize("kind", ["garbage", "unknown", "wrong-secret", "revoked"])
def test_an_invalid_key_is_unauthenticated(
    kind: str, header: str, anonymous: TestClient, make_key: KeyMaker, engine: Engine
) -> None:
    token = bad_token(kind, make_key=make_key, engine=engine, anonymous=anonymous)
    value = f"Bearer {token}" if header == "Authorization" else token

    response = anonymous.get("/v1/teams", headers={header: value})

    assert error_of(response, 401)["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_no_key_is_unauthenticated(anonymous: TestClient) -> None:
    response = anonymous.get("/v1/teams")

    assert error_of(response, 401)["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == "Bearer"


# Called by other systems, authenticated by a signature over the body rather than a key.
SIGNED_BY_THEIR_SENDERS = {"/v1/webhooks/{source}", "/v1/x/webhook"}


def test_every_v1_route_refuses_a_caller_without_a_key(app: FastAPI, anonymous: TestClient) -> None:
    paths: dict[str, dict[str, Any]] = app.openapi()["paths"]
    calls = [
        (m.upper(), path)
        for path, ops in paths.items()
        if path.startswith("/v1/") and path not in SIGNED_BY_THEIR_SENDERS
        for m in ops
    ]
    answers = {
        (method, path): anonymous.request(method, re.sub(r"\{[^}]+\}", "1", path)).status_code
        for method, path in calls
    }

    assert len(answers) >= 22
    assert {call: status for call, status in answers.items() if status != 401} == {}


@pytest.mark.parametrize("parameter", ["api_key", "access_token"])
def test_a_key_in_the_url_is_not_accepted(
    parameter: str, anonymous: TestClient, make_key: KeyMaker
) -> None:
    headers = make_key("admin")
    assert anonymous.get("/v1/teams", headers=headers).status_code == 200

    response = anonymous.get("/v1/teams", params={parameter: token_of(headers)})

    assert error_of(response, 401)["code"] == "unauthenticated"


@pytest.mark.parametrize("form", ["bearer", "x-api-key"])
def test_both_header_forms_carry_the_key(
    form: str, anonymous: TestClient, make_key: KeyMaker
) -> None:
    token = token_of(make_key("queue:hr"))
    headers = {"Authorization": f"Bearer {token}"} if form == "bearer" else {"X-API-Key": token}

    response = anonymous.get("/v1/teams/hr/tickets", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["team"] == "hr"


def test_health_and_readiness_need_no_key(anonymous: TestClient) -> None:
    assert anonymous.get("/health").json() == {"status": "ok"}
    ready = anonymous.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


# --- 403: a key without the scope -------------------------------------------------------------

TABLE = {"rules": [{"name": "everything", "team": "triage", "priority": "P3"}]}
ACCOUNT = {"handle": "TransNordFret", "kind": "company", "display_name": "TransNord Fret"}


@pytest.mark.parametrize(
    ("scope", "method", "path", "body", "missing"),
    [
        ("ingest", "PUT", "/v1/routing/table", TABLE, "routing:write"),
        ("ingest", "GET", "/v1/routing/versions", None, "routing:write"),
        ("ingest", "POST", "/v1/accounts", ACCOUNT, "admin"),
        ("ingest", "PUT", "/v1/teams/x", {"name": "X"}, "admin"),
        ("queue:customer-service", "POST", "/v1/mentions", mention("1", DELAY_EN), "ingest"),
    ],
)
def test_a_key_without_the_scope_is_forbidden(
    scope: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    missing: str,
    client: TestClient,
    make_key: KeyMaker,
    engine: Engine,
) -> None:
    before = rows(engine)

    refused = client.request(method, path, json=body, headers=make_key(scope))

    error = error_of(refused, 403)
    assert (error["code"], error["details"]) == ("forbidden", {"scope": missing})
    after = rows(engine)
    assert {k: v for k, v in after.items() if k != "api_keys"} == {
        k: v for k, v in before.items() if k != "api_keys"
    }
    allowed = client.request(method, path, json=body)  # the admin key
    assert allowed.is_success, allowed.text
    if method != "GET":
        assert rows(engine) != after


# --- 404: another team's queue, ticket or mention ---------------------------------------------


@dataclass(frozen=True)
class Call:
    """One ticket or queue endpoint, with the admin actions that make it legal on a new ticket."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    setup: tuple[tuple[str, dict[str, Any]], ...] = field(default=())

    def send(self, client: TestClient, *, ticket: int, team: str, key: dict[str, str]) -> Response:
        url = self.path.format(ticket=ticket, team=team)
        response: Response = client.request(self.method, url, json=self.body, headers=key)
        return response

    @property
    def on_queue(self) -> bool:
        return "{team}" in self.path


CALLS = [
    Call("GET", "/v1/teams/{team}/tickets"),
    Call("POST", "/v1/teams/{team}/tickets/claim", {"agent": "alice"}),
    Call("GET", "/v1/tickets/{ticket}"),
    Call("POST", "/v1/tickets/{ticket}/assign", {"assignee": "alice"}),
    Call("POST", "/v1/tickets/{ticket}/unassign", setup=(("assign", {"assignee": "bruno"}),)),
    Call("POST", "/v1/tickets/{ticket}/notes", {"note": "called the customer back"}),
    Call("POST", "/v1/tickets/{ticket}/waiting", {"note": "answered on X"}),
    Call("POST", "/v1/tickets/{ticket}/resolve"),
    Call("POST", "/v1/tickets/{ticket}/reopen", setup=(("resolve", {}),)),
    Call("POST", "/v1/tickets/{ticket}/route", {"team": COMMUNICATIONS, "reason": "press"}),
]


def ticket_facts(db: Db, ticket_id: int) -> tuple[str, str | None, int, int]:
    ticket: Ticket = db.one(select(Ticket).where(Ticket.id == ticket_id))
    return ticket.state.value, ticket.assignee, ticket.team_id, db.count(TicketEvent)


@pytest.mark.parametrize("call", CALLS, ids=[f"{c.method} {c.path}" for c in CALLS])
def test_another_teams_queue_and_ticket_are_not_found_and_untouched(
    call: Call, client: TestClient, make_key: KeyMaker, db: Db, engine: Engine
) -> None:
    ticket, _ = open_ticket(client)
    for action, body in call.setup:
        assert client.post(f"/v1/tickets/{ticket}/{action}", json=body).status_code == 200
    other_team = make_key(f"queue:{COMMUNICATIONS}", name="communications")
    own_team = make_key(f"queue:{CUSTOMER_SERVICE}", name="customer-service")
    before, facts = rows(engine), ticket_facts(db, ticket)

    refused = call.send(client, ticket=ticket, team=CUSTOMER_SERVICE, key=other_team)

    assert error_of(refused, 404)["code"] == "not_found"
    assert ticket_facts(db, ticket) == facts
    assert rows(engine) == before
    missing = call.send(client, ticket=ticket + 999, team="no-such-team", key=other_team)
    asked, nowhere = (CUSTOMER_SERVICE, "no-such-team") if call.on_queue else (ticket, ticket + 999)
    assert missing.status_code == 404
    assert anonymised(missing, str(nowhere)) == anonymised(refused, str(asked))
    worked = call.send(client, ticket=ticket, team=CUSTOMER_SERVICE, key=own_team)
    assert worked.is_success, worked.text
    if call.method == "POST":  # the same call with the right key does change the ticket
        assert ticket_facts(db, ticket)[3] > facts[3]


def test_a_mention_is_read_by_its_teams_keys_and_ingest_keys_only(
    client: TestClient, make_key: KeyMaker
) -> None:
    _, mention_id = open_ticket(client)
    other_team = make_key(f"queue:{COMMUNICATIONS}")

    refused = client.get(f"/v1/mentions/{mention_id}", headers=other_team)
    missing = client.get(f"/v1/mentions/{mention_id + 999}", headers=other_team)

    assert error_of(refused, 404)["code"] == "not_found"
    assert anonymised(refused, str(mention_id)) == anonymised(missing, str(mention_id + 999))
    for scope in (f"queue:{CUSTOMER_SERVICE}", "ingest"):
        read = client.get(f"/v1/mentions/{mention_id}", headers=make_key(scope))
        assert read.status_code == 200, (scope, read.text)
        assert read.json()["id"] == mention_id


def test_a_key_with_two_queues_works_both_and_no_other(
    client: TestClient, make_key: KeyMaker
) -> None:
    delay = post_mention(client, "1", DELAY_EN)["routing"]
    press = post_mention(client, "2", PRESS_EN)["routing"]
    assert (delay["team"], press["team"]) == (CUSTOMER_SERVICE, COMMUNICATIONS)
    both = make_key(f"queue:{CUSTOMER_SERVICE}", f"queue:{COMMUNICATIONS}", name="both")

    for routing in (delay, press):
        queue = client.get(f"/v1/teams/{routing['team']}/tickets", headers=both)
        assert [t["id"] for t in queue.json()["items"]] == [routing["ticket_id"]]
        note = {"note": "on it"}
        noted = client.post(f"/v1/tickets/{routing['ticket_id']}/notes", json=note, headers=both)
        assert noted.status_code == 200, noted.text

    assert client.get("/v1/teams/hr/tickets", headers=both).status_code == 404
    claim = client.post("/v1/teams/hr/tickets/claim", json={"agent": "alice"}, headers=both)
    assert claim.status_code == 404


def test_an_admin_key_works_every_queue_and_ticket(client: TestClient, make_key: KeyMaker) -> None:
    ticket, mention_id = open_ticket(client)
    admin = make_key("admin", name="another-admin")

    for team in TEAMS:
        queue = client.get(f"/v1/teams/{team}/tickets", headers=admin)
        assert queue.status_code == 200, (team, queue.text)
    assert client.get(f"/v1/tickets/{ticket}", headers=admin).json()["team"] == CUSTOMER_SERVICE
    assert client.get(f"/v1/mentions/{mention_id}", headers=admin).status_code == 200
    assign = {"assignee": "chloe"}
    assigned = client.post(f"/v1/tickets/{ticket}/assign", json=assign, headers=admin)
    assert assigned.json()["assignee"] == "chloe"
    assert client.get("/v1/routing/versions", headers=admin).status_code == 200


def test_a_re_routed_ticket_s_mentions_follow_it(client: TestClient, make_key: KeyMaker) -> None:
    posted = client.post("/v1/mentions", json=mention("follow", DELAY_EN)).json()
    client.post(
        f"/v1/tickets/{posted['routing']['ticket_id']}/route",
        json={"team": "communications", "reason": "press"},
    )

    before = client.get(f"/v1/mentions/{posted['id']}", headers=make_key("queue:customer-service"))
    after = client.get(f"/v1/mentions/{posted['id']}", headers=make_key("queue:communications"))

    assert before.status_code == 404
    assert after.status_code == 200
