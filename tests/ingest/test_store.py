"""The set-based writes of new posts match what the one-by-one path of tickets writes."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.db import make_sessionmaker
from app.teams.models import Team
from app.tickets import sla
from app.tickets.models import Ticket
from tests.builders import CEO, DELAY_EN, PRESS_EN, PROBLEM_EN, mention


def test_tickets_opened_with_their_batch_have_the_deadlines_sla_schedule_gives(
    client: TestClient, engine: Engine
) -> None:
    batch = [
        mention("d1", DELAY_EN),
        mention("d2", PROBLEM_EN, account=CEO),
        mention("d3", PRESS_EN),
    ]
    items = client.post("/v1/mentions/batch", json={"mentions": batch}).json()["items"]

    with make_sessionmaker(engine)() as session:
        for item in items:
            ticket = session.get_one(Ticket, item["mention"]["routing"]["ticket_id"])
            written = _deadlines(session, ticket)
            due_at = ticket.due_at

            sla.schedule(session=session, ticket=ticket, team=session.get_one(Team, ticket.team_id))

            assert _deadlines(session, ticket) == written
            assert ticket.due_at == due_at
            assert len(written) == 2
        session.rollback()


def _deadlines(session: object, ticket: Ticket) -> dict[str, tuple[object, object]]:
    deadlines = sla.deadlines_of(session=session, ticket=ticket)  # type: ignore[arg-type]
    return {kind: (d.due_at, d.warn_at) for kind, d in deadlines.items()}
