"""Readiness fails when the database does not answer; `aiguilleur migrate` brings a database up."""

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

from app.classify.service import Classifier
from app.config import Settings
from app.main import create_app
from tests.server import free_port, run_child_cli


def test_ready_is_503_when_the_database_is_unreachable(classifier: Classifier) -> None:
    closed = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"
    app = create_app(Settings(database_url=closed, _env_file=None), classifier=classifier)  # type: ignore[call-arg]

    with TestClient(app) as client:
        health = client.get("/health")
        ready = client.get("/ready")

    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    assert ready.json()["database"].startswith("unavailable")
    assert "nobody" not in ready.text


def test_the_migrate_command(tmp_path: Path) -> None:
    """The entry point in a real process: `python -m app.cli` (most tests call it in-process)."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    result = run_child_cli("migrate", database_url=url)

    assert result.returncode == 0, result.stderr
    assert "database at revision" in result.stdout
    assert "mentions" in inspect(create_engine(url)).get_table_names()
