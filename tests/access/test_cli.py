"""`aiguilleur keys` against the test database, and the first admin key that `aiguilleur serve`
prints on an empty database."""

import hashlib
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from app.access import service as access
from app.access.commands import print_first_admin_key
from app.access.models import ApiKey
from app.config import Settings
from app.db import make_sessionmaker
from tests.access.keys import expire_cached_keys
from tests.cli import run_cli
from tests.conftest import Db

CREATED = re.compile(r"^key ([0-9a-f]{12}) \(", re.MULTILINE)
SECRET = re.compile(r"^secret, shown this once: (aig_\S+)$", re.MULTILINE)


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    """A client that sends no key of its own."""
    with TestClient(app) as client:
        yield client


def create_key(database_url: str, *scopes: str, name: str = "ops") -> tuple[str, str, str]:
    """The key id, the token and everything `keys create` printed."""
    options = [part for scope in scopes for part in ("--scope", scope)]
    result = run_cli("keys", "create", "--name", name, *options, database_url=database_url)
    assert result.returncode == 0, result.stderr
    [key_id] = CREATED.findall(result.stdout)
    [token] = SECRET.findall(result.stdout)
    return key_id, token, result.stdout


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_prints_the_id_and_the_secret_once(
    database_url: str, engine: Engine, db: Db
) -> None:
    key_id, token, printed = create_key(database_url, "ingest", "queue:hr", name="bot")

    assert token.startswith(f"aig_{key_id}_")
    assert printed.count(token.split("_", 2)[2]) == 1
    assert "bot: ingest, queue:hr" in printed
    key: ApiKey = db.one(select(ApiKey))
    assert (key.key_id, key.name, key.scopes) == (key_id, "bot", ["ingest", "queue:hr"])


def test_the_secret_is_stored_only_as_a_hash(database_url: str, engine: Engine) -> None:
    key_id, token, _ = create_key(database_url, "admin")
    secret = token.split("_", 2)[2]

    with engine.connect() as connection:
        [row] = connection.execute(select(ApiKey.__table__)).all()
    stored = " ".join(str(value) for value in row)

    assert row.key_id == key_id
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in stored
    assert secret[:16] not in stored


def test_a_created_key_works_over_http_until_revoked(
    database_url: str, http: TestClient, db: Db
) -> None:
    key_id, token, _ = create_key(database_url, "queue:hr", name="hr-desk")
    assert http.get("/v1/teams/hr/tickets", headers=bearer(token)).status_code == 200
    assert http.get("/v1/teams/triage/tickets", headers=bearer(token)).status_code == 404

    listed = run_cli("keys", "list", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if "hr-desk" in line]
    assert line.startswith(key_id)
    assert line.endswith("active")
    assert token.split("_", 2)[2] not in listed.stdout + listed.stderr

    revoked = run_cli("keys", "revoke", key_id, database_url=database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked key {key_id} (hr-desk)" in revoked.stdout
    expire_cached_keys(http)  # the revocation holds once `key_cache_seconds` have passed

    refused = http.get("/v1/teams/hr/tickets", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthenticated"
    relisted = run_cli("keys", "list", database_url=database_url).stdout
    assert "revoked" in next(line for line in relisted.splitlines() if line.startswith(key_id))
    assert db.one(select(ApiKey.revoked_at)) is not None


def test_revoking_an_unknown_key_fails(database_url: str, engine: Engine) -> None:
    result = run_cli("keys", "revoke", "0123456789ab", database_url=database_url)

    assert result.returncode == 2
    assert "no key '0123456789ab'" in result.stderr


@pytest.mark.parametrize("scope", ["bogus", "queue:", "queue:Customer Service", "root"])
def test_an_invalid_scope_is_refused(scope: str, database_url: str, engine: Engine, db: Db) -> None:
    result = run_cli("keys", "create", "--name", "n", "--scope", scope, database_url=database_url)

    assert result.returncode == 2
    assert f"unknown scope {scope!r}" in result.stderr
    assert "aig_" not in result.stdout
    assert db.count(ApiKey) == 0


def test_an_invalid_scope_is_not_blamed_on_the_settings(database_url: str, engine: Engine) -> None:
    result = run_cli("keys", "create", "--name", "n", "--scope", "bogus", database_url=database_url)

    assert result.returncode == 2
    assert "AIGUILLEUR_" not in result.stderr


@pytest.mark.parametrize("scope", ["admin\n", "queue:hr\n"])
def test_a_scope_with_a_trailing_newline_is_refused(
    scope: str, database_url: str, engine: Engine, db: Db
) -> None:
    result = run_cli("keys", "create", "--name", "n", "--scope", scope, database_url=database_url)

    assert result.returncode == 2
    assert db.count(ApiKey) == 0


def test_the_first_admin_key_is_printed_once(
    settings: Settings, engine: Engine, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    print_first_admin_key(settings)
    [token] = re.findall(
        r"^first admin API key \(shown once, keep it\): (aig_\S+)$",
        capsys.readouterr().out,
        re.MULTILINE,
    )

    print_first_admin_key(settings)

    assert capsys.readouterr().out == ""
    assert db.count(ApiKey) == 1
    with make_sessionmaker(engine, read_only=True)() as session:
        principal = access.verify(session=session, token=token)
    assert principal is not None
    assert principal.is_admin
