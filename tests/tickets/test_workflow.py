"""Working tickets over HTTP: claim, assign, wait, resolve, reopen, notes, re-route, the detail
view, queue filters, and the audit trail every change leaves."""

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from app.db import make_sessionmaker, utcnow
from app.outbox.models import OutboxEvent
from app.tickets.models import Ticket, TicketEvent
from tests.builders import CEO, DELAY_EN, PRESS_EN, PROBLEM_EN, mention
from tests.conftest import Db


class Matches(str):
    """Equal to any string the pattern matches (for ids made at random)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and re.match(self, other) is not None

    __hash__ = str.__hash__


SCHEDULE_EN = "@TransNordRail what time is the first train from York to Leeds on Sunday morning?"


def post(client: TestClient, external_id: str, text: str = DELAY_EN, **overrides: Any) -> int:
    response = client.post("/v1/mentions", json=mention(external_id, text, **overrides))
    assert response.status_code in (200, 201), response.text
    ticket_id: int = response.json()["routing"]["ticket_id"]
    return ticket_id


def act(client: TestClient, ticket_id: int, action: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/v1/tickets/{ticket_id}/{action}", json=body or None)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def events(client: TestClient, ticket_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(f"/v1/tickets/{ticket_id}").json()["events"]
    return found


# The audit trail names the key behind each change, whoever the body says acted.
KEY_REFERENCE = Matches(r"^key:admin:[0-9a-f]{12}$")


def set_column(engine: Engine, ticket_id: int, **values: Any) -> None:
    with make_sessionmaker(engine)() as session, session.begin():
        session.execute(update(Ticket).where(Ticket.id == ticket_id).values(**values))


def test_the_life_of_a_ticket(client: TestClient) -> None:
    ticket_id = post(client, "1")

    claimed = client.post("/v1/teams/customer-service/tickets/claim", json={"agent": "alice"})
    assert claimed.status_code == 200
    assert claimed.json()["id"] == ticket_id
    assert claimed.json()["state"] == "assigned"
    assert claimed.json()["assignee"] == "alice"
    assert claimed.json()["lease_expires_at"] is not None

    act(client, ticket_id, "notes", note="asked the control centre", agent="alice")
    waiting = act(client, ticket_id, "waiting", note="asked for the booking ref", agent="alice")
    assert waiting["state"] == "waiting"
    assert waiting["first_response_at"] is not None

    # The rider answers in the same thread: the ticket is back with alice.
    answered = post(client, "2", "Booking ref ABC123", in_reply_to_id="1")
    assert answered == ticket_id
    assert client.get(f"/v1/tickets/{ticket_id}").json()["state"] == "assigned"

    resolved = act(client, ticket_id, "resolve", agent="alice")
    assert resolved["state"] == "resolved"
    assert resolved["resolved_at"] is not None

    # A new post in the conversation reopens it, unassigned, with fresh deadlines.
    assert post(client, "3", "Still no refund!", in_reply_to_id="1") == ticket_id
    reopened = client.get(f"/v1/tickets/{ticket_id}").json()
    assert (reopened["state"], reopened["assignee"]) == ("open", None)
    assert reopened["first_response_at"] is None
    assert [
        (e["kind"], e["from_state"], e["to_state"], e["actor"]) for e in reopened["events"]
    ] == [
        ("created", None, "open", "system:router"),
        ("claimed", "open", "assigned", "alice"),
        ("note", None, None, "alice"),
        ("waiting", "assigned", "waiting", "alice"),
        ("mention_added", "waiting", "assigned", "system:router"),
        ("resolved", "assigned", "resolved", "alice"),
        ("reopened", "resolved", "open", "system:router"),
        ("mention_added", None, None, "system:router"),
    ]
    assert reopened["events"][2]["note"] == "asked the control centre"


def test_without_an_agent_the_key_is_the_actor(client: TestClient) -> None:
    ticket_id = post(client, "1")

    act(client, ticket_id, "notes", note="seen")

    assert events(client, ticket_id)[-1]["actor"] == "key:admin"


@pytest.mark.parametrize(
    ("setup", "action", "body"),
    [
        ([], "unassign", {}),
        ([], "reopen", {}),
        (["resolve"], "resolve", {}),
        (["resolve"], "waiting", {}),
        (["resolve"], "assign", {"assignee": "alice"}),
        (["resolve"], "route", {"team": "communications", "reason": "press"}),
        (["waiting"], "assign", {"assignee": "alice"}),
        (["waiting"], "waiting", {}),
    ],
)
def test_an_illegal_transition_is_a_409_and_changes_nothing(
    client: TestClient, db: Db, setup: list[str], action: str, body: dict[str, Any]
) -> None:
    ticket_id = post(client, "1")
    for step in setup:
        act(client, ticket_id, step)
    before = db.count(TicketEvent)

    response = client.post(f"/v1/tickets/{ticket_id}/{action}", json=body or None)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "illegal_transition"
    assert "allowed_from" in response.json()["error"]["details"]
    assert db.count(TicketEvent) == before


def test_assign_and_unassign(client: TestClient) -> None:
    ticket_id = post(client, "1")

    assigned = act(client, ticket_id, "assign", assignee="bruno", agent="chloe")
    assert (assigned["state"], assigned["assignee"]) == ("assigned", "bruno")
    assert assigned["lease_expires_at"] is None  # an assignment is not a lease
    reassigned = act(client, ticket_id, "assign", assignee="alice")
    assert reassigned["assignee"] == "alice"
    unassigned = act(client, ticket_id, "unassign")
    assert (unassigned["state"], unassigned["assignee"]) == ("open", None)
    trail = events(client, ticket_id)
    assert trail[1]["data"] == {
        "assignee": "bruno",
        "previous_assignee": None,
        "via": KEY_REFERENCE,
    }
    assert trail[2]["data"]["previous_assignee"] == "bruno"
    assert (trail[1]["actor"], trail[2]["actor"]) == ("chloe", "key:admin")


def test_only_members_take_a_team_s_tickets(client: TestClient) -> None:
    ticket_id = post(client, "1")

    assign = client.post(f"/v1/tickets/{ticket_id}/assign", json={"assignee": "mallory"})
    claim = client.post("/v1/teams/customer-service/tickets/claim", json={"agent": "mallory"})

    assert assign.status_code == 422
    assert assign.json()["error"]["details"] == {"agent": "mallory", "team": "customer-service"}
    assert claim.status_code == 422


def test_claims_take_the_most_urgent_first_then_answer_204(client: TestClient) -> None:
    p3 = post(client, "1", SCHEDULE_EN)
    p1 = post(client, "2", PROBLEM_EN, account=CEO, author={"handle": "someone"})
    p2 = post(client, "3", DELAY_EN, author={"handle": "another"})

    claims = [
        client.post("/v1/teams/customer-service/tickets/claim", json={"agent": "alice"})
        for _ in range(4)
    ]

    assert [c.status_code for c in claims] == [200, 200, 200, 204]
    assert [c.json()["id"] for c in claims[:3]] == [p1, p2, p3]
    assert claims[3].content == b""


def test_an_expired_lease_frees_the_ticket_for_another_agent(
    client: TestClient, engine: Engine
) -> None:
    ticket_id = post(client, "1")
    first = client.post(
        "/v1/teams/customer-service/tickets/claim", json={"agent": "alice", "lease_seconds": 60}
    )
    assert first.json()["id"] == ticket_id
    busy = client.post("/v1/teams/customer-service/tickets/claim", json={"agent": "bruno"})
    assert busy.status_code == 204

    set_column(engine, ticket_id, lease_expires_at=utcnow() - timedelta(seconds=1))
    second = client.post("/v1/teams/customer-service/tickets/claim", json={"agent": "bruno"})

    assert second.status_code == 200
    assert (second.json()["id"], second.json()["assignee"]) == (ticket_id, "bruno")
    assert events(client, ticket_id)[-1]["data"]["previous_assignee"] == "alice"


def test_a_ticket_moves_to_another_team_with_a_reason(
    client: TestClient, make_key: Any, db: Db
) -> None:
    ticket_id = post(client, "1")
    agents = make_key("queue:customer-service")
    client.post(f"/v1/tickets/{ticket_id}/assign", json={"assignee": "alice"}, headers=agents)

    moved = client.post(
        f"/v1/tickets/{ticket_id}/route",
        json={"team": "communications", "reason": "a journalist, not a rider", "priority": "P1"},
        headers=agents,
    )

    assert moved.status_code == 200
    assert (moved.json()["team"], moved.json()["priority"]) == ("communications", "P1")
    assert (moved.json()["state"], moved.json()["assignee"]) == ("open", None)
    # customer-service no longer sees it; communications does.
    assert client.get(f"/v1/tickets/{ticket_id}", headers=agents).status_code == 404
    queue = client.get("/v1/teams/communications/tickets").json()["items"]
    assert [t["id"] for t in queue] == [ticket_id]
    rerouted = events(client, ticket_id)[-1]
    assert rerouted["kind"] == "rerouted"
    assert rerouted["note"] == "a journalist, not a rider"
    assert rerouted["data"] | {"via": None} == {
        "from_team": "customer-service",
        "to_team": "communications",
        "previous_assignee": "alice",
        "priority": "P2 -> P1",
        "via": None,
    }
    assert rerouted["data"]["via"].startswith("key:test:")
    # Both teams' systems hear about it.
    updates = db.scalars(select(OutboxEvent).where(OutboxEvent.type == "ticket.updated"))
    assert {e.payload["data"]["ticket"]["team"] for e in updates} >= {
        "customer-service",
        "communications",
    }


def test_routing_to_an_unknown_team_is_a_422(client: TestClient) -> None:
    ticket_id = post(client, "1")

    response = client.post(f"/v1/tickets/{ticket_id}/route", json={"team": "nobody", "reason": "x"})

    assert response.status_code == 422


def test_the_ticket_detail_shows_thread_routing_deadlines_and_events(client: TestClient) -> None:
    ticket_id = post(client, "1")
    post(client, "2", "Now 70 minutes, still nothing", in_reply_to_id="1")

    detail = client.get(f"/v1/tickets/{ticket_id}").json()

    assert [m["external_id"] for m in detail["thread"]] == ["1", "2"]
    assert detail["mention_count"] == 2
    assert detail["routing"]["rule"] == "disruption"
    assert [v["rule"] for v in detail["routing"]["tried"]][-1] == "disruption"
    assert all(not v["matched"] and v["reasons"] for v in detail["routing"]["tried"][:-1])
    kinds = [d["kind"] for d in detail["deadlines"]]
    assert kinds == ["first_response", "resolution"]
    assert detail["due_at"] == detail["deadlines"][0]["due_at"]
    assert [e["kind"] for e in detail["events"]] == ["created", "mention_added"]


def test_resolving_publishes_ticket_resolved(client: TestClient, db: Db) -> None:
    ticket_id = post(client, "1")

    act(client, ticket_id, "resolve", note="train running again")

    [event] = db.scalars(select(OutboxEvent).where(OutboxEvent.type == "ticket.resolved"))
    assert event.payload["data"]["ticket"]["id"] == ticket_id
    assert event.payload["data"]["ticket"]["state"] == "resolved"


def test_a_post_long_after_resolution_opens_a_new_ticket(
    client: TestClient, engine: Engine
) -> None:
    ticket_id = post(client, "1")
    act(client, ticket_id, "resolve")
    set_column(engine, ticket_id, resolved_at=utcnow() - timedelta(days=8))

    again = post(client, "2", "Delayed again, same train", in_reply_to_id="1")

    assert again != ticket_id
    assert client.get(f"/v1/tickets/{ticket_id}").json()["state"] == "resolved"


def test_agents_reopen_a_ticket(client: TestClient) -> None:
    ticket_id = post(client, "1")
    act(client, ticket_id, "assign", assignee="alice")
    act(client, ticket_id, "resolve")

    reopened = act(client, ticket_id, "reopen", note="the rider wrote by mail")

    assert (reopened["state"], reopened["assignee"], reopened["resolved_at"]) == (
        "open",
        None,
        None,
    )


def test_queue_filters(client: TestClient, engine: Engine) -> None:
    delay = post(client, "1", DELAY_EN)
    problem = post(client, "2", PROBLEM_EN, author={"handle": "b"})
    schedule = post(client, "3", SCHEDULE_EN, author={"handle": "c"})
    press = post(client, "4", PRESS_EN, author={"handle": "d"})
    act(client, problem, "assign", assignee="alice")
    act(client, schedule, "resolve")
    set_column(engine, delay, breached=True)

    def ids(**params: Any) -> list[int]:
        page = client.get("/v1/teams/customer-service/tickets", params=params).json()
        return [t["id"] for t in page["items"]]

    assert ids() == [delay, problem]
    assert ids(state="resolved") == [schedule]
    assert ids(state=["open", "resolved"]) == [delay, schedule]
    assert ids(priority="P3", state=["open", "resolved"]) == [schedule]
    assert ids(label="problem") == [problem]
    assert ids(assignee="alice") == [problem]
    assert ids(breached=True) == [delay]
    assert ids(breached=False) == [problem]
    assert press not in ids(state=["open", "assigned", "waiting", "resolved"])
    bad = client.get("/v1/teams/customer-service/tickets", params={"state": "lost"})
    assert bad.status_code == 422
