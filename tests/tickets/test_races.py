"""Two writers on one ticket: what the second sees once the first commits. Each test holds one
transaction open while another starts; on PostgreSQL the second waits on the row lock, on SQLite
on the write lock, and both must end in the same place."""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from app.classify.service import Classifier
from app.db import make_sessionmaker, utcnow
from app.errors import NotFound
from app.ingest import service as ingest
from app.ingest.schemas import MentionIn
from app.outbox.models import OutboxEvent
from app.teams import service as teams
from app.tickets import queue, sla, workflow
from app.tickets.models import Ticket, TicketEvent
from tests.builders import DELAY_EN, mention
from tests.conftest import Db, KeyMaker

T = TypeVar("T")


def in_thread(work: Callable[[], T]) -> Callable[[], T | BaseException]:
    """Start work in a thread; the returned function waits for its result (or its error)."""
    outcome: list[T | BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as error:  # handed to the test
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()

    def result() -> T | BaseException:
        thread.join(timeout=30)
        return outcome[0]

    return result


def act() -> workflow.Act:
    return workflow.Act(actor="alice", now=utcnow())


def post(client: TestClient, external_id: str, **overrides: Any) -> int:
    body = client.post("/v1/mentions", json=mention(external_id, DELAY_EN, **overrides)).json()
    ticket_id: int = body["routing"]["ticket_id"]
    return ticket_id


def test_a_ticket_moved_away_meanwhile_is_not_changed_by_the_old_team(
    client: TestClient, engine: Engine
) -> None:
    ticket_id = post(client, "1")
    sessions = make_sessionmaker(engine)
    with sessions() as mover:
        ticket = queue.get_ticket(session=mover, ticket_id=ticket_id, teams=None, lock=True)
        to = teams.get(session=mover, slug="communications")
        workflow.reroute(
            session=mover, ticket=ticket, to=to, reason="press", priority=None, act=act()
        )

        def old_team_resolves() -> Ticket:
            with sessions() as agent:
                found = queue.get_ticket(
                    session=agent,
                    ticket_id=ticket_id,
                    teams=frozenset({"customer-service"}),
                    lock=True,
                )
                workflow.resolve(session=agent, ticket=found, note=None, act=act())
                agent.commit()
                return found

        result = in_thread(old_team_resolves)
        time.sleep(0.5)  # the agent is now waiting for the mover's lock
        mover.commit()

    assert isinstance(result(), NotFound)
    detail = client.get(f"/v1/tickets/{ticket_id}").json()
    assert (detail["team"], detail["state"]) == ("communications", "open")


def test_a_post_while_an_agent_resolves_reopens_the_ticket(
    client: TestClient, engine: Engine, classifier: Classifier
) -> None:
    ticket_id = post(client, "1")
    client.post(f"/v1/tickets/{ticket_id}/waiting")
    sessions = make_sessionmaker(engine)
    follow_up = MentionIn.model_validate(mention("2", "any news?", in_reply_to_id="1"))
    with sessions() as agent:
        ticket = queue.get_ticket(session=agent, ticket_id=ticket_id, teams=None, lock=True)
        workflow.resolve(session=agent, ticket=ticket, note=None, act=act())

        def customer_writes() -> int:
            with sessions() as writer:
                [done] = ingest.ingest(
                    session=writer,
                    classifier=classifier,
                    mentions=[follow_up],
                    limit=1,
                    reopen_within=timedelta(days=7),
                )
                writer.commit()
                return done.mention_id

        result = in_thread(customer_writes)
        time.sleep(0.5)
        agent.commit()

    assert isinstance(result(), int)
    detail = client.get(f"/v1/tickets/{ticket_id}").json()
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds[-3:] == ["resolved", "reopened", "mention_added"]
    assert (detail["state"], detail["resolved_at"]) == ("open", None)
    assert [d["met_at"] for d in detail["deadlines"]] == [None, None]


def test_reopening_when_a_newer_ticket_holds_the_conversation_is_a_409(
    client: TestClient, engine: Engine
) -> None:
    first = post(client, "1")
    client.post(f"/v1/tickets/{first}/resolve")
    with make_sessionmaker(engine)() as session, session.begin():
        session.get_one(Ticket, first).resolved_at = utcnow() - timedelta(days=30)
    second = post(client, "2", in_reply_to_id="1")
    assert second != first

    response = client.post(f"/v1/tickets/{first}/reopen")

    assert response.status_code == 409
    assert response.json()["error"]["details"]["open_ticket"] == second


@pytest.fixture
def breached_twice(client: TestClient, engine: Engine) -> int:
    """A triage ticket whose two deadlines are both long past."""
    ticket_id = post(client, "1")
    client.post(
        f"/v1/tickets/{ticket_id}/route", json={"team": "triage", "reason": "x", "priority": "P3"}
    )
    with make_sessionmaker(engine)() as session, session.begin():
        ticket = session.get_one(Ticket, ticket_id)
        ticket.cycle_started_at = utcnow() - timedelta(days=10)
        sla.schedule(session=session, ticket=ticket, team=teams.get(session=session, slug="triage"))
    return ticket_id


def sweep(engine: Engine) -> workflow.Sweep:
    with make_sessionmaker(engine)() as session, session.begin():
        return workflow.sweep(session=session, now=utcnow())


def test_two_breaches_in_one_pass_escalate_once_and_retime_the_ticket(
    client: TestClient, engine: Engine, db: Db, breached_twice: int
) -> None:
    assert sweep(engine).breaches == 2

    detail = client.get(f"/v1/tickets/{breached_twice}").json()
    escalations = [e for e in detail["events"] if e["kind"] == "escalated"]
    assert [e["data"] for e in escalations] == [
        {"from_team": "triage", "to_team": "customer-service"}
    ]
    # Now timed by customer-service's policy: its deadlines, not triage's, and not yet due.
    assert detail["team"] == "customer-service"
    moved = db.scalars(select(TicketEvent).where(TicketEvent.kind == "escalated"))
    assert len(moved) == 1


def test_the_team_a_ticket_leaves_is_told_where_it_went(client: TestClient, db: Db) -> None:
    ticket_id = post(client, "1")
    client.post(
        f"/v1/tickets/{ticket_id}/route", json={"team": "communications", "reason": "press"}
    )

    [moved] = db.scalars(select(OutboxEvent).where(OutboxEvent.type == "ticket.moved"))
    assert moved.payload["data"]["ticket"]["team"] == "communications"
    assert moved.payload["data"]["moved_from"] == "customer-service"


def test_a_claim_s_lease_outlives_waiting(client: TestClient, engine: Engine) -> None:
    ticket_id = post(client, "1")
    client.post("/v1/teams/customer-service/tickets/claim", json={"agent": "alice"})
    client.post(f"/v1/tickets/{ticket_id}/waiting")
    with make_sessionmaker(engine)() as session, session.begin():
        session.get_one(Ticket, ticket_id).lease_expires_at = utcnow() - timedelta(seconds=1)

    post(client, "2", in_reply_to_id="1")  # the customer answers: back to alice...
    assert client.get(f"/v1/tickets/{ticket_id}").json()["state"] == "assigned"
    assert sweep(engine).leases_released == 1  # ...whose claim has run out

    assert client.get(f"/v1/tickets/{ticket_id}").json()["state"] == "open"


def test_queue_keys_see_only_the_rule_that_matched(client: TestClient, make_key: KeyMaker) -> None:
    ticket_id = post(client, "1")

    agents = client.get(f"/v1/tickets/{ticket_id}", headers=make_key("queue:customer-service"))
    managers = client.get(f"/v1/tickets/{ticket_id}")

    assert [v["rule"] for v in agents.json()["routing"]["tried"]] == ["disruption"]
    assert len(managers.json()["routing"]["tried"]) > 1
