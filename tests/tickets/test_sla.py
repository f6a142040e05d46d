"""SLA deadlines in business time, and the timer that warns, breaches, escalates and frees
expired leases, driven with a clock the test controls."""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from app.db import make_sessionmaker
from app.teams.models import Team
from app.tickets import sla, workflow
from app.tickets.models import Ticket, TicketDeadline
from tests.builders import DELAY_EN, mention
from tests.cli import run_cli
from tests.conftest import Db

# customer-service (config/aiguilleur.example.yaml): Europe/Paris, Mon-Fri 07:00-21:00,
# Sat 08:00-18:00, Sunday closed; SLA in business time, warning at 75 %; P2: first response
# within 60 minutes, resolution within 24 hours; a breach raises the priority.
FRIDAY_2030_PARIS = datetime(2026, 11, 27, 19, 30, tzinfo=UTC)
# 30 minutes on Friday (to 21:00) and 30 on Saturday from 08:00: Sat 08:30 Paris = 07:30 UTC.
FIRST_RESPONSE_DUE = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)
# 45 minutes (75 % of 60): 30 on Friday, 15 on Saturday: 08:15 Paris.
FIRST_RESPONSE_WARN = datetime(2026, 11, 28, 7, 15, tzinfo=UTC)
# 1,440 minutes: 30 Friday + 600 Saturday + (Sunday closed) 810 Monday from 07:00 = 20:30 Paris.
RESOLUTION_DUE = datetime(2026, 11, 30, 19, 30, tzinfo=UTC)


def ticket_at(client: TestClient, engine: Engine, start: datetime, **overrides: Any) -> int:
    """A ticket whose SLA clock started at `start`."""
    response = client.post("/v1/mentions", json=mention("1", DELAY_EN, **overrides))
    ticket_id: int = response.json()["routing"]["ticket_id"]
    with make_sessionmaker(engine)() as session, session.begin():
        ticket = session.get_one(Ticket, ticket_id)
        ticket.cycle_started_at = start
        sla.schedule(session=session, ticket=ticket, team=session.get_one(Team, ticket.team_id))
    return ticket_id


def sweep(engine: Engine, now: datetime) -> workflow.Sweep:
    with make_sessionmaker(engine)() as session, session.begin():
        return workflow.sweep(session=session, now=now)


def kinds(client: TestClient, ticket_id: int) -> list[str]:
    return [e["kind"] for e in client.get(f"/v1/tickets/{ticket_id}").json()["events"]]


def test_deadlines_count_business_hours_only(client: TestClient, engine: Engine, db: Db) -> None:
    ticket_id = ticket_at(client, engine, FRIDAY_2030_PARIS)

    deadlines = {
        d.kind: d
        for d in db.scalars(select(TicketDeadline).where(TicketDeadline.ticket_id == ticket_id))
    }

    assert deadlines["first_response"].due_at == FIRST_RESPONSE_DUE
    assert deadlines["first_response"].warn_at == FIRST_RESPONSE_WARN
    assert deadlines["resolution"].due_at == RESOLUTION_DUE
    assert client.get(f"/v1/tickets/{ticket_id}").json()["due_at"] == "2026-11-28T07:30:00Z"


def test_warning_then_breach_then_escalation_each_once(client: TestClient, engine: Engine) -> None:
    ticket_id = ticket_at(client, engine, FRIDAY_2030_PARIS)
    assert kinds(client, ticket_id) == ["created"]

    assert sweep(engine, FIRST_RESPONSE_WARN - timedelta(seconds=1)) == workflow.Sweep()
    assert sweep(engine, FIRST_RESPONSE_WARN) == workflow.Sweep(warnings=1)
    assert sweep(engine, FIRST_RESPONSE_WARN + timedelta(minutes=1)) == workflow.Sweep()
    assert sweep(engine, FIRST_RESPONSE_DUE) == workflow.Sweep(breaches=1)
    assert sweep(engine, FIRST_RESPONSE_DUE + timedelta(minutes=5)) == workflow.Sweep()

    detail = client.get(f"/v1/tickets/{ticket_id}").json()
    assert kinds(client, ticket_id) == ["created", "sla_warning", "sla_breached", "escalated"]
    assert detail["breached"] is True
    assert detail["priority"] == "P1"
    assert detail["events"][2]["data"]["deadline"] == "first_response"
    assert detail["events"][3]["data"] == {"priority": "P2 -> P1"}
    breached = client.get("/v1/teams/customer-service/tickets", params={"breached": True})
    assert [t["id"] for t in breached.json()["items"]] == [ticket_id]


def test_an_answered_ticket_is_timed_on_its_resolution(client: TestClient, engine: Engine) -> None:
    ticket_id = ticket_at(client, engine, FRIDAY_2030_PARIS)
    client.post(f"/v1/tickets/{ticket_id}/waiting")

    assert sweep(engine, FIRST_RESPONSE_DUE + timedelta(hours=1)) == workflow.Sweep()
    detail = client.get(f"/v1/tickets/{ticket_id}").json()
    assert detail["due_at"] == "2026-11-30T19:30:00Z"
    assert sweep(engine, RESOLUTION_DUE) == workflow.Sweep(warnings=0, breaches=1)
    assert kinds(client, ticket_id)[-2:] == ["sla_breached", "escalated"]


def test_a_resolved_ticket_raises_no_alarm(client: TestClient, engine: Engine) -> None:
    ticket_id = ticket_at(client, engine, FRIDAY_2030_PARIS)
    client.post(f"/v1/tickets/{ticket_id}/resolve")

    assert sweep(engine, RESOLUTION_DUE + timedelta(days=30)) == workflow.Sweep()


def test_a_breach_can_move_the_ticket_to_another_team(client: TestClient, engine: Engine) -> None:
    # triage escalates to customer-service; its P3 target is 120 minutes around the clock.
    ticket_id = ticket_at(client, engine, FRIDAY_2030_PARIS)
    client.post(
        f"/v1/tickets/{ticket_id}/route",
        json={"team": "triage", "reason": "unclear", "priority": "P3"},
    )
    with make_sessionmaker(engine)() as session:
        due = session.get_one(Ticket, ticket_id).due_at
    assert due == FRIDAY_2030_PARIS + timedelta(minutes=120)

    assert sweep(engine, due).breaches == 1

    detail = client.get(f"/v1/tickets/{ticket_id}").json()
    assert (detail["team"], detail["priority"]) == ("customer-service", "P3")
    assert detail["events"][-1]["data"] == {
        "from_team": "triage",
        "to_team": "customer-service",
    }


def test_the_timer_frees_expired_leases(client: TestClient, engine: Engine) -> None:
    ticket_id = ticket_at(client, engine, FRIDAY_2030_PARIS)
    claimed = client.post(
        "/v1/teams/customer-service/tickets/claim", json={"agent": "alice", "lease_seconds": 600}
    ).json()
    lease_end = datetime.fromisoformat(claimed["lease_expires_at"])

    assert sweep(engine, lease_end - timedelta(seconds=1)).leases_released == 0
    assert sweep(engine, lease_end).leases_released == 1

    detail = client.get(f"/v1/tickets/{ticket_id}").json()
    assert (detail["state"], detail["assignee"]) == ("open", None)
    assert detail["events"][-1]["kind"] == "lease_expired"


def test_the_worker_command_runs_one_pass(
    client: TestClient, engine: Engine, database_url: str
) -> None:
    ticket_id = ticket_at(client, engine, datetime(2026, 1, 5, 8, 0, tzinfo=UTC))

    result = run_cli("worker", "--once", database_url=database_url)

    assert result.returncode == 0, result.stderr
    # Long past: both deadlines are breached in one pass.
    assert "0 warnings, 2 breaches" in result.stdout
    assert kinds(client, ticket_id).count("sla_breached") == 2
