"""`aiguilleur import FILE`: CSV and JSON lines, refused lines, re-imports."""

import csv
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.classify.models import Classification
from app.config import Settings
from app.ingest import importer
from app.ingest.ahead import ClassifyingHelper, HelperFailed
from app.ingest.models import Mention
from app.tickets.models import Ticket
from tests.builders import CEO, DELAY_EN, DELAY_FR, PRAISE_EN, PROBLEM_EN, mention
from tests.cli import run_cli
from tests.conftest import Db

pytestmark = pytest.mark.usefixtures("configured")


def write_jsonl(path: Path, bodies: list[Any]) -> Path:
    lines = [b if isinstance(b, str) else json.dumps(b, ensure_ascii=False) for b in bodies]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(path: Path, settings: Settings, **options: Any) -> int:
    return importer.import_file(
        path,
        file_format=options.get("file_format"),
        chunk=options.get("chunk"),
        settings=settings,
        helper=options.get("helper", False),
    )


def test_json_lines_are_ingested_like_posts(tmp_path: Path, settings: Settings, db: Db) -> None:
    bodies = [
        mention("j1", DELAY_FR, source="crm"),
        mention("j2", PROBLEM_EN, source="crm", account=CEO, author={"handle": "@Ana", "id": "7"}),
        mention("j3", PRAISE_EN, source="crm", created_at="2026-11-20T08:15:00+01:00"),
    ]

    assert run(write_jsonl(tmp_path / "m.jsonl", bodies), settings, chunk=2) == 0

    stored = {m.external_id: m for m in db.scalars(select(Mention))}
    assert set(stored) == {"j1", "j2", "j3"}
    assert (stored["j2"].author_handle, stored["j2"].author_external_id) == ("Ana", "7")
    assert stored["j3"].posted_at.isoformat() == "2026-11-20T07:15:00+00:00"
    assert db.count(Ticket) == 2  # praise is stored, not queued


def test_csv_columns_are_the_body_fields(tmp_path: Path, settings: Settings, db: Db) -> None:
    path = tmp_path / "history.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "external_id", "account", "author.handle", "author.followers",
                         "text", "conversation_id", "raw"])  # fmt: skip
        writer.writerow(["crm", "c1", "TransNordRail", "rider", "120", DELAY_EN, "", '{"id": 1}'])
        writer.writerow(["crm", "c2", "TransNordRail", "rider", "", "still stuck,\nplease", "c1",
                         ""])  # fmt: skip

    assert run(path, settings) == 0

    first, second = db.scalars(select(Mention).order_by(Mention.external_id))
    assert (first.author_followers, first.raw) == (120, {"id": 1})
    assert second.text == "still stuck,\nplease"
    assert second.conversation_root == "c1"
    assert db.count(Ticket) == 1  # the second post joined the first one's thread


def test_refused_lines_are_named_and_nothing_is_written(
    tmp_path: Path, settings: Settings, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = [
        mention("b1", DELAY_EN),
        '{"source": "api", ',
        mention("b3", DELAY_EN),
        mention("b4", DELAY_EN, account="nobody_here"),
        mention("b5", ""),
    ]

    assert run(write_jsonl(tmp_path / "bad.jsonl", bodies), settings) == 2

    errors = capsys.readouterr().err
    assert "3 lines refused; nothing was imported" in errors
    assert "line 2: " in errors
    assert "line 4: account: 'nobody_here' is not a watched account" in errors
    assert "line 5: text: " in errors
    assert "line 1:" not in errors
    assert db.count(Mention) == 0


def test_a_csv_with_unknown_columns_is_refused(
    tmp_path: Path, settings: Settings, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.csv"
    path.write_text("source,external_id,colour\napi,1,blue\n", encoding="utf-8")

    assert run(path, settings) == 2

    assert "line 1: unknown columns: colour" in capsys.readouterr().err
    assert db.count(Mention) == 0


def test_a_second_import_of_the_same_file_changes_nothing(
    tmp_path: Path, settings: Settings, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [mention(f"r{i}", DELAY_EN) for i in range(5)])
    assert run(path, settings) == 0
    tickets = db.count(Ticket)

    assert run(path, settings, chunk=2) == 0

    assert "5 mentions, 0 new, 5 already stored" in capsys.readouterr().out
    assert db.count(Mention) == 5
    assert db.count(Ticket) == tickets


@pytest.mark.slow
def test_a_helper_process_classifies_as_this_one_does(
    tmp_path: Path, settings: Settings, db: Db
) -> None:
    texts = [DELAY_FR, PROBLEM_EN, PRAISE_EN, DELAY_EN, "bonjour"]
    for source, helper in (("here", False), ("helper", True)):
        bodies = [mention(f"h{i}", text, source=source) for i, text in enumerate(texts * 3)]
        path = write_jsonl(tmp_path / f"{source}.jsonl", bodies)
        assert run(path, settings, chunk=4, helper=helper) == 0

    def verdicts(source: str) -> list[tuple[str, str, float, bool]]:
        query = (
            select(Mention.external_id, Classification.label, Classification.probability,
                   Classification.triage)
            .join(Classification, Classification.mention_id == Mention.id)
            .where(Mention.source == source)
            .order_by(Mention.external_id)
        )  # fmt: skip
        return [tuple(row) for row in db.rows(query)]

    assert len(verdicts("helper")) == 15
    assert verdicts("helper") == verdicts("here")
    assert run(tmp_path / "helper.jsonl", settings, chunk=4, helper=True) == 0
    assert db.count(Mention) == 30


@pytest.mark.slow
def test_a_helper_that_cannot_load_the_model_stops_the_import_before_any_write(
    tmp_path: Path, settings: Settings, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [mention("x1", DELAY_EN)])
    broken = settings.model_copy(update={"model_path": tmp_path / "no-model-here"})

    assert run(path, broken, helper=True) == 1

    assert "the classifying process could not load the model" in capsys.readouterr().err
    assert db.count(Mention) == 0


@pytest.mark.slow
def test_the_import_command(tmp_path: Path, database_url: str, db: Db) -> None:
    path = write_jsonl(tmp_path / "m.ndjson", [mention(f"cli{i}", DELAY_EN) for i in range(3)])

    done = run_cli("import", str(path), database_url=database_url)

    assert done.returncode == 0, done.stderr
    assert "3 mentions, 3 new, 0 already stored" in done.stdout
    assert db.count(Mention) == 3
    unknown = run_cli("import", str(tmp_path / "m.txt"), database_url=database_url)
    assert unknown.returncode == 2
    assert "--format" in unknown.stderr


def test_a_helper_is_started_for_a_large_file_on_sqlite_with_several_cpus(tmp_path: Path) -> None:
    large, small = tmp_path / "large.jsonl", tmp_path / "small.jsonl"
    large.write_bytes(b"x" * importer.HELPER_MIN_BYTES)
    small.write_bytes(b"x" * 100)
    on_sqlite = Settings(database_url=f"sqlite:///{tmp_path}/a.db", _env_file=None)  # type: ignore[call-arg]
    on_postgres = on_sqlite.model_copy(
        update={"database_url": "postgresql+psycopg://u@127.0.0.1:5432/a"}
    )

    assert importer.helper_pays(large, on_sqlite, cpus=2)
    assert not importer.helper_pays(large, on_sqlite, cpus=1)
    assert not importer.helper_pays(small, on_sqlite, cpus=2)
    assert not importer.helper_pays(large, on_postgres, cpus=8)
    assert not importer.helper_pays(tmp_path / "missing.jsonl", on_sqlite, cpus=2)


@pytest.mark.slow
def test_a_helper_killed_between_chunks_fails_the_import_with_a_clear_error(
    settings: Settings,
) -> None:
    chunks = [[DELAY_EN], [PROBLEM_EN], [PRAISE_EN], [DELAY_FR]]

    with ClassifyingHelper(settings) as helper:
        verdicts = helper.verdicts(chunks)
        assert next(verdicts)[0].label == "delay"
        helpers = helper._pool._processes.values()  # private, but the only way to its process
        (process,) = [child for child in multiprocessing.active_children() if child in helpers]
        process.kill()
        process.join(timeout=10)
        time.sleep(1)  # the pool notices its worker is gone: the next submit is refused

        with pytest.raises(HelperFailed, match="died"):
            list(verdicts)
