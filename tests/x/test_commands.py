"""`aiguilleur x check|backfill|status` and `aiguilleur accounts list|set` (in-process, and
`x check` once in a child process), with credentials from the environment or a secrets directory,
against the local X stand-in."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Account
from app.config import Settings
from app.ingest.models import Mention
from app.x import client as x_client
from app.x import polling
from tests.cli import run_cli
from tests.conftest import Db
from tests.server import run_child_cli
from tests.x.conftest import COMPANY_X_ID, Models
from tests.x.fake_x import BEARER, Failure, FakeX, post, user

CREDENTIALS = {
    "AIGUILLEUR_X_BEARER_TOKEN": BEARER,
    "AIGUILLEUR_X_CONSUMER_KEY": "consumer-key",
    "AIGUILLEUR_X_CONSUMER_SECRET": "consumer-secret",
    "AIGUILLEUR_X_ACCESS_TOKEN": "access-token",
    "AIGUILLEUR_X_ACCESS_TOKEN_SECRET": "access-token-secret",
}


def x_env(fake: FakeX, **more: str) -> dict[str, str]:
    return {"AIGUILLEUR_X_API_URL": fake.url, **CREDENTIALS, **more}


@pytest.mark.usefixtures("configured")
def test_x_check_says_which_accounts_resolve(fake_x: FakeX, database_url: str) -> None:
    fake_x.users = {
        COMPANY_X_ID: user(COMPANY_X_ID, "TransNordRail"),
        "77": user("77", "TransNordAide"),
    }

    # In a real process: credentials from its environment, never in what it prints or logs.
    result = run_child_cli("x", "check", database_url=database_url, **x_env(fake_x))

    assert result.returncode == 1, result.stderr  # the CEO's account is not found
    lines = result.stdout.splitlines()
    assert "read: the bearer token works" in lines
    assert f"  @transnordrail: ok ({COMPANY_X_ID})" in lines
    assert any("@transnordaide: resolves to 77 (no x_user_id set" in line for line in lines)
    assert "  @camilledurand_ceo: not found on X" in lines
    assert "reply: replies go out as @TransNordHelp (900)" in lines
    for secret in CREDENTIALS.values():
        assert secret not in result.stdout + result.stderr


@pytest.mark.usefixtures("configured")
def test_credentials_come_from_a_secrets_directory(
    fake_x: FakeX, database_url: str, tmp_path: Path
) -> None:
    for name, value in CREDENTIALS.items():
        (tmp_path / name.lower()).write_text(value)
    fake_x.users = {COMPANY_X_ID: user(COMPANY_X_ID, "TransNordRail")}

    result = run_cli(
        "x",
        "check",
        database_url=database_url,
        AIGUILLEUR_X_API_URL=fake_x.url,
        AIGUILLEUR_SECRETS_DIR=str(tmp_path),
    )

    assert "read: the bearer token works" in result.stdout, result.stderr
    assert "reply: replies go out as @TransNordHelp (900)" in result.stdout


@pytest.mark.usefixtures("configured")
def test_x_check_reports_refused_credentials(fake_x: FakeX, database_url: str) -> None:
    env = x_env(fake_x, AIGUILLEUR_X_BEARER_TOKEN="revoked-token")
    result = run_cli("x", "check", database_url=database_url, **env)
    assert result.returncode == 1
    assert "read: refused: X answered 401: Unauthorized" in result.stdout
    assert "revoked-token" not in result.stdout + result.stderr


@pytest.mark.usefixtures("configured")
def test_x_backfill_imports_history_once(fake_x: FakeX, database_url: str, db: Db) -> None:
    fake_x.users["102"] = user("102", "rider_two")
    fake_x.mentions[COMPANY_X_ID] = [
        post(i, f"@TransNordRail train late again ({i})", "102") for i in range(1, 6)
    ]
    since = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")

    first = run_cli("x", "backfill", "--since", since, database_url=database_url, **x_env(fake_x))
    again = run_cli("x", "backfill", "--since", since, database_url=database_url, **x_env(fake_x))

    assert first.returncode == 0, first.stderr
    assert "@transnordrail mentions: 5 new mentions" in first.stdout
    assert "@transnordrail mentions: 0 new mentions" in again.stdout
    calls = fake_x.requests_to(f"/2/users/{COMPANY_X_ID}/mentions")
    assert calls[0].params["start_time"] == since
    assert db.count(Mention) == 5


def test_a_backfill_waits_out_a_rate_limit(
    fake_x: FakeX,
    x_settings: Settings,
    sessions: sessionmaker[Session],
    models: Models,
    db: Db,
) -> None:
    fake_x.users["102"] = user("102", "rider_two")
    fake_x.mentions[COMPANY_X_ID] = [
        post(i, f"@TransNordRail late ({i})", "102") for i in (1, 2, 3)
    ]
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    reset = str(int(now.timestamp()) + 60)
    fake_x.fail(
        Failure("/2/users/", 429, {"detail": "Too Many Requests"}, {"x-rate-limit-reset": reset})
    )
    slept: list[float] = []

    created = polling.backfill(
        sessions=sessions,
        settings=x_settings,
        models=models,
        x=x_client.reader(x_settings),
        since=now - timedelta(days=1),
        handles=["TransNordRail"],
        sleep=slept.append,
        clock=lambda: now,
    )

    assert slept == [61.0]
    assert created == {"@transnordrail mentions": 3}
    assert db.count(Mention) == 3


@pytest.mark.usefixtures("configured")
def test_x_status_shows_each_poller(database_url: str) -> None:
    result = run_cli("x", "status", database_url=database_url)
    assert result.returncode == 0
    assert "no checkpoints yet" in result.stdout


@pytest.mark.usefixtures("configured")
def test_accounts_are_set_and_listed_from_the_command_line(database_url: str, db: Db) -> None:
    changed = run_cli(
        "accounts",
        "set",
        "@CamilleDurand_CEO",
        "--x-user-id",
        "4242",
        "--search-term",
        "Camille Durand",
        "--search-term",
        "TransNord CEO",
        "--poll-interval",
        "120",
        database_url=database_url,
    )
    added = run_cli(
        "accounts",
        "set",
        "TransNordFret",
        "--kind",
        "company",
        "--display-name",
        "TransNord Fret",
        database_url=database_url,
    )
    refused = run_cli(
        "accounts", "set", "TransNordFret", "--search-term=-spam", database_url=database_url
    )
    listed = run_cli("accounts", "list", database_url=database_url)

    assert changed.stdout.strip() == "@camilledurand_ceo updated", changed.stderr
    assert added.stdout.strip() == "@transnordfret registered", added.stderr
    assert refused.returncode == 2
    assert "search term" in refused.stderr
    ceo = db.one(select(Account).where(Account.handle == "camilledurand_ceo"))
    assert (ceo.x_user_id, ceo.search_terms, ceo.poll_interval_seconds) == (
        "4242",
        ["Camille Durand", "TransNord CEO"],
        120,
    )
    assert (
        "@camilledurand_ceo (executive) x_user_id=4242 search: Camille Durand, TransNord CEO; "
        "polled every 120 s"
    ) in listed.stdout
