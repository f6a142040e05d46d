"""The whole loop as a user runs it: `aiguilleur serve` on the embedded default, its in-process
worker polling the local X stand-in, the ticket read over HTTP, a reply queued over HTTP and
posted on X."""

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.builders import DELAY_EN
from tests.conftest import EXAMPLE_CONFIG
from tests.server import running_server
from tests.x.conftest import COMPANY_X_ID
from tests.x.fake_x import BEARER, FakeX, post, user

pytestmark = pytest.mark.slow


def eventually(check: Callable[[], object], seconds: float = 30.0) -> object:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_post_on_x_becomes_a_ticket_and_the_agent_s_reply_goes_out(
    fake_x: FakeX, tmp_path: Path
) -> None:
    fake_x.users["102"] = user("102", "rider_two", 120)
    fake_x.mentions[COMPANY_X_ID] = [post(1578516295611748353, DELAY_EN, "102")]
    log = tmp_path / "serve.log"
    settings = {
        "AIGUILLEUR_X_API_URL": fake_x.url,
        "AIGUILLEUR_X_BEARER_TOKEN": BEARER,
        "AIGUILLEUR_X_CONSUMER_KEY": "consumer-key",
        "AIGUILLEUR_X_CONSUMER_SECRET": "consumer-secret",
        "AIGUILLEUR_X_ACCESS_TOKEN": "access-token",
        "AIGUILLEUR_X_ACCESS_TOKEN_SECRET": "access-token-secret",
        "AIGUILLEUR_WORKER_INTERVAL_SECONDS": "0.2",
        "AIGUILLEUR_LOG_LEVEL": "DEBUG",
    }
    database_url = f"sqlite:///{tmp_path / 'x.db'}"
    with running_server(database_url, EXAMPLE_CONFIG, log, **settings) as base_url:
        printed = re.search(r"first admin API key \(shown once, keep it\): (\S+)", log.read_text())
        assert printed is not None
        api = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {printed[1]}"})

        def queued() -> list[dict[str, object]]:
            items: list[dict[str, object]] = api.get("/v1/teams/customer-service/tickets").json()[
                "items"
            ]
            return items

        [ticket] = eventually(queued)  # type: ignore[misc]
        detail = api.get(f"/v1/tickets/{ticket['id']}").json()
        assert detail["thread"][0]["external_id"] == "1578516295611748353"
        assert detail["thread"][0]["author"]["handle"] == "rider_two"
        assert detail["thread"][0]["classification"]["label"] == "delay"

        reply = api.post(
            f"/v1/tickets/{ticket['id']}/replies",
            json={"text": "Sorry: a signal failure, trains are moving again. ^Alice"},
        )
        assert reply.status_code == 202

        def sent() -> list[dict[str, object]]:
            replies = api.get(f"/v1/tickets/{ticket['id']}/replies").json()
            return [r for r in replies if r["state"] == "sent"]

        [done] = eventually(sent)  # type: ignore[misc]
        assert done["x_post_id"] == fake_x.tweets[0]["id"]
        assert api.get(f"/v1/tickets/{ticket['id']}").json()["first_response_at"] is not None

    text = log.read_text()
    for secret in ("test-bearer-token", "access-token-secret", "consumer-secret"):
        assert secret not in text  # DEBUG logs included
