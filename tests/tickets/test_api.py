"""A team's queue: order, cursor pagination, errors."""

import base64
import json

import pytest
from fastapi.testclient import TestClient

from tests.builders import CEO, DELAY_EN, PROBLEM_EN, mention

SCHEDULE_EN = "@TransNordRail what time is the first train from York to Leeds on Sunday morning?"


def post(client: TestClient, external_id: str, text: str, **overrides: object) -> int:
    body = client.post("/v1/mentions", json=mention(external_id, text, **overrides)).json()
    ticket_id: int = body["routing"]["ticket_id"]
    return ticket_id


def test_the_queue_is_ordered_by_priority_then_age(client: TestClient) -> None:
    p3 = post(client, "1", SCHEDULE_EN)
    p2_old = post(client, "2", DELAY_EN)
    p2_new = post(client, "3", PROBLEM_EN)
    p1 = post(client, "4", PROBLEM_EN, account=CEO)

    queue = client.get("/v1/teams/customer-service/tickets").json()

    assert [t["id"] for t in queue["items"]] == [p1, p2_old, p2_new, p3]
    assert [t["priority"] for t in queue["items"]] == ["P1", "P2", "P2", "P3"]
    assert queue["next_cursor"] is None


def test_pages_follow_the_cursor_without_gaps_or_repeats(client: TestClient) -> None:
    texts = [DELAY_EN, PROBLEM_EN, SCHEDULE_EN]
    ids = [post(client, str(i), texts[i % 3]) for i in range(7)]

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/teams/customer-service/tickets", params=params).json()
        seen += [t["id"] for t in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))


def test_an_empty_queue(client: TestClient) -> None:
    assert client.get("/v1/teams/hr/tickets").json() == {
        "team": "hr",
        "items": [],
        "next_cursor": None,
    }


def test_queue_errors(client: TestClient) -> None:
    assert client.get("/v1/teams/nobody/tickets").status_code == 404
    assert client.get("/v1/teams/hr/tickets", params={"limit": 101}).status_code == 422
    bad_cursor = client.get("/v1/teams/hr/tickets", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["error"]["code"] == "validation_failed"


def cursor(*position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        cursor("P2", "2026-11-20T08:00:00", 1),  # naive time
        cursor("P2", "2026-11-20", 1),  # a date, no zone
        cursor("P9", "2026-11-20T08:00:00+00:00", 1),  # no such priority
        cursor(None, "2026-11-20T08:00:00+00:00", 1),
        cursor("P2", "2026-11-20T08:00:00+00:00", 1.5),
        cursor("P2", "2026-11-20T08:00:00+00:00", True),
        cursor("P2", "2026-11-20T08:00:00+00:00", 10**23),
        cursor("P2", "9999-12-31T23:59:59-05:00", 1),  # overflows when moved to UTC
        cursor("P2", 5, 1),
        cursor("P2"),
        "eyJub3QiOiAiYSBsaXN0In0",  # {"not": "a list"}
        "%%%",
    ],
)
def test_a_tampered_cursor_is_a_422(client: TestClient, token: str) -> None:
    response = client.get("/v1/teams/hr/tickets", params={"cursor": token})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_teams_are_listed(client: TestClient) -> None:
    slugs = [t["slug"] for t in client.get("/v1/teams").json()]

    assert slugs == ["communications", "customer-service", "hr", "investor-relations", "triage"]
