"""The model lifecycle: versions in the database, activation without a restart (audited, and
refused for a broken artifact), agents' label corrections, and a retrain that learns from them."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app import db as app_db
from app.classify import commands, registry
from app.classify import serving as serving_module
from app.classify.models import LabelCorrection
from app.classify.service import Classifier
from app.config import PACKAGED_MODEL_PATH, Settings
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from ml import embeddings
from ml.classifier import AveragedProbabilities
from ml.dataset import seed_corpus
from ml.model import METADATA_FILE, MODEL_FILE, TRUSTED_TYPES, TextClassifier, save
from tests.builders import DELAY_EN, PRESS_EN, mention
from tests.cli import run_cli
from tests.conftest import POSTGRES_URL, Db, KeyMaker


def copy_of_the_shipped_model(directory: Path, version: str) -> Path:
    """The shipped model under another version name: a second version to switch to."""
    shutil.copytree(PACKAGED_MODEL_PATH, directory)
    metadata = json.loads((directory / METADATA_FILE).read_text())
    (directory / METADATA_FILE).write_text(json.dumps({**metadata, "version": version}))
    return directory


def register(engine: Engine, directory: Path) -> str:
    model = TextClassifier.load(directory)
    with make_sessionmaker(engine)() as session, session.begin():
        registry.register(session=session, model=model, directory=directory)
    return model.version


def serving(client: TestClient) -> str:
    version: str = client.get("/v1/models").json()["serving"]
    return version


def test_the_model_in_service_is_registered_and_active(client: TestClient) -> None:
    models = client.get("/v1/models").json()

    [row] = models["versions"]
    assert row["version"] == models["serving"]
    assert row["active"] is True
    assert row["path"] == "builtin"
    assert row["details"]["labels"]
    assert client.get("/v1/models/activations").json()[0]["actor"] == "system:start"


def test_activating_a_version_switches_without_a_restart(
    client: TestClient, engine: Engine, tmp_path: Path
) -> None:
    before = serving(client)
    other = register(engine, copy_of_the_shipped_model(tmp_path / "m2", "aiguilleur-test-2"))

    response = client.post(f"/v1/models/{other}/activate")

    assert response.status_code == 200
    assert response.json()["active"] is True
    assert serving(client) == other
    posted = client.post("/v1/mentions", json=mention("1", DELAY_EN)).json()
    assert posted["classification"]["model_version"] == other
    [activation, *_] = client.get("/v1/models/activations").json()
    assert (activation["version"], activation["previous_version"]) == (other, before)
    assert activation["actor"] == "key:admin"
    versions = client.get("/v1/models").json()["versions"]
    assert [v["version"] for v in versions if v["active"]] == [other]


@pytest.mark.parametrize("damage", ["garbage", "untrusted", "missing", "other-version"])
def test_a_broken_artifact_is_refused_and_the_running_model_keeps_serving(
    client: TestClient, engine: Engine, tmp_path: Path, damage: str
) -> None:
    directory = copy_of_the_shipped_model(tmp_path / "m2", "aiguilleur-test-2")
    version = register(engine, directory)
    before = serving(client)
    if damage == "garbage":
        (directory / MODEL_FILE).write_bytes(os.urandom(4096))
    elif damage == "untrusted":
        sio.dump(Pipeline([("run", FunctionTransformer(os.system))]), directory / MODEL_FILE)
    elif damage == "missing":
        (directory / MODEL_FILE).unlink()
    else:
        metadata = json.loads((directory / METADATA_FILE).read_text())
        (directory / METADATA_FILE).write_text(json.dumps({**metadata, "version": "someone-else"}))

    response = client.post(f"/v1/models/{version}/activate")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_model"
    assert serving(client) == before
    active = [v["version"] for v in client.get("/v1/models").json()["versions"] if v["active"]]
    assert active == [before]
    assert client.post("/v1/mentions", json=mention("1", DELAY_EN)).status_code == 201


def test_a_model_with_an_embeddings_member_is_refused_where_the_extra_is_missing(
    client: TestClient, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The member's regression is all the file holds; the encoder comes from the extra, which
    # None in sys.modules hides, as on a server installed without it.
    rng = np.random.default_rng(13)
    regression = LogisticRegression().fit(
        rng.normal(size=(20, embeddings.DIMENSIONS)), ["delay", "other"] * 10
    )
    shipped = TextClassifier.load(PACKAGED_MODEL_PATH)
    averaged = AveragedProbabilities(
        [
            sio.load(PACKAGED_MODEL_PATH / MODEL_FILE, trusted=TRUSTED_TYPES),
            embeddings.EmbeddingClassifier(regression),
        ]
    )
    directory = tmp_path / "with-embeddings"
    save(averaged, {**shipped.metadata, "version": "aiguilleur-emb"}, directory)
    with make_sessionmaker(engine)() as session, session.begin():
        model = TextClassifier(averaged, {"version": "aiguilleur-emb"})
        registry.register(session=session, model=model, directory=directory)
    monkeypatch.setitem(sys.modules, embeddings.MODEL_PACKAGE, None)
    before = serving(client)

    response = client.post("/v1/models/aiguilleur-emb/activate")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_model"
    assert "needs the embeddings extra: pip install '.[embeddings]'" in error["message"]
    assert serving(client) == before
    assert client.post("/v1/mentions", json=mention("1", DELAY_EN)).status_code == 201


def test_an_unknown_version_is_a_404_and_models_are_for_admins(
    client: TestClient, make_key: KeyMaker
) -> None:
    assert client.post("/v1/models/nope/activate").status_code == 404
    ops = make_key("queue:customer-service", "ingest", "routing:write")
    assert client.get("/v1/models", headers=ops).status_code == 403
    assert client.post("/v1/models/nope/activate", headers=ops).status_code == 403


@pytest.fixture
def second_process(
    settings: Settings, classifier: Classifier, configured: None
) -> Iterator[FastAPI]:
    """Another API process on the same database, checking the active version every 0.1 s."""
    app = create_app(
        settings.model_copy(update={"model_refresh_seconds": 0.1}),
        classifier=classifier,
        with_worker=False,
    )
    with TestClient(app):
        yield app


def test_other_processes_follow_an_activation(
    client: TestClient, second_process: FastAPI, engine: Engine, tmp_path: Path, database_url: str
) -> None:
    other = register(engine, copy_of_the_shipped_model(tmp_path / "m2", "aiguilleur-test-2"))

    result = run_cli("models", "activate", other, database_url=database_url)

    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 10
    while second_process.state.classifier.version != other:
        assert time.monotonic() < deadline, "the second process never switched"
        time.sleep(0.05)


def test_an_agent_corrects_a_label(client: TestClient, make_key: KeyMaker, db: Db) -> None:
    posted = client.post("/v1/mentions", json=mention("1", DELAY_EN)).json()
    ticket_id = posted["routing"]["ticket_id"]
    agents = make_key("queue:customer-service")

    response = client.post(
        f"/v1/mentions/{posted['id']}/label",
        json={"label": "problem", "agent": "alice", "note": "a refund, not a delay"},
        headers=agents,
    )

    assert response.status_code == 201
    assert response.json() | {"at": None} == {
        "mention_id": posted["id"],
        "label": "problem",
        "previous_label": "delay",
        "actor": "alice",
        "note": "a refund, not a delay",
        "at": None,
    }
    ticket = client.get(f"/v1/tickets/{ticket_id}").json()
    assert ticket["label"] == "problem"
    assert ticket["events"][-1]["kind"] == "relabelled"
    assert ticket["events"][-1]["data"] == {
        "from": "delay",
        "to": "problem",
        "mention_id": posted["id"],
    }
    again = client.post(f"/v1/mentions/{posted['id']}/label", json={"label": "schedule"}).json()
    assert (again["previous_label"], again["actor"]) == ("problem", "key:admin")
    assert len(db.scalars(select(LabelCorrection))) == 2


def test_corrections_are_refused_outside_the_team_and_for_unknown_labels(
    client: TestClient, make_key: KeyMaker, db: Db
) -> None:
    posted = client.post("/v1/mentions", json=mention("1", DELAY_EN)).json()
    press = client.post("/v1/mentions", json=mention("2", PRESS_EN, author={"handle": "j"})).json()
    communications = make_key("queue:communications")

    other_team = client.post(
        f"/v1/mentions/{posted['id']}/label", json={"label": "press"}, headers=communications
    )
    unknown = client.post(f"/v1/mentions/{posted['id']}/label", json={"label": "weather"})
    missing = client.post("/v1/mentions/999999/label", json={"label": "delay"})
    own_team = client.post(
        f"/v1/mentions/{press['id']}/label", json={"label": "other"}, headers=communications
    )

    assert other_team.status_code == 404
    assert unknown.status_code == 422
    assert missing.status_code == 404
    assert own_team.status_code == 201
    assert len(db.scalars(select(LabelCorrection))) == 1


def test_export_training_writes_each_corrected_mention_once(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    first = client.post("/v1/mentions", json=mention("1", DELAY_EN)).json()
    client.post(f"/v1/mentions/{first['id']}/label", json={"label": "problem"})
    client.post(f"/v1/mentions/{first['id']}/label", json={"label": "schedule"})
    out = tmp_path / "corrections.jsonl"

    result = run_cli("export-training", "--out", str(out), database_url=database_url)

    assert result.returncode == 0, result.stderr
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (row["text"], row["label"], row["source"]) == (DELAY_EN, "schedule", "correction")
    assert (row["mention_id"], row["corrected_by"]) == (first["id"], "key:admin")


# Questions about travelling with pets, bikes or luggage ask for travel information: `schedule`
# by the taxonomy. The shipped model files most of them under `problem` or `other`.
CORRECTED = [
    "Can I bring my dog on the train to Lille?",
    "Are dogs allowed on TER trains?",
    "Can my cat travel with me in a carrier on the RER?",
    "Do pets need a ticket on the 8:15 to Arras?",
    "Is my small dog allowed on the Paris Lille service?",
    "Can I take my guinea pig on the train in a cage?",
    "Peut-on voyager avec un chien dans le TER ?",
    "Mon chat peut-il voyager avec moi jusqu'à Amiens ?",
    "Faut-il un billet pour un chien sur la ligne P ?",
    "Les animaux sont-ils acceptés dans le train de 18h ?",
    "Est-ce que je peux prendre mon lapin dans le RER ?",
    "Un grand chien muselé est-il autorisé à bord ?",
    "Can I take my bike on the 7:40 to Leeds?",
    "Are folding bikes allowed at rush hour?",
    "Do I need to book a space for my bicycle on the train to York?",
    "Peut-on monter avec un vélo dans le TER Lille-Arras ?",
    "Les vélos sont-ils acceptés dans le RER aux heures de pointe ?",
    "Faut-il réserver pour un vélo dans l'Intercités ?",
    "How many suitcases can I bring on the train?",
    "Is there a luggage limit on TransNord trains?",
    "Combien de bagages peut-on emporter dans le train ?",
    "Can I bring a pushchair on board without folding it?",
    "Peut-on monter avec une poussette non pliée ?",
    "Can I carry skis on the train to the Alps?",
]
UNSEEN = [
    "Can my dog travel with me on the train to Reims?",
    "Are pets allowed on the 18:40 to Lens?",
    "Mon chien peut-il monter dans le TER pour Douai ?",
    "Can I put my bike on the 17:02 to Wakefield?",
    "Les chats sont-ils admis dans le train pour Calais ?",
    "Is a folding scooter allowed on board?",
]


def train_a_version(
    client: TestClient, database_url: str, store: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`aiguilleur train OPTIONS --cv-folds 0` into `store`; its output and the new version."""
    result = run_cli(
        "train",
        *options,
        "--cv-folds",
        "0",
        database_url=database_url,
        AIGUILLEUR_MODEL_STORE=str(store),
    )
    assert result.returncode == 0, result.stderr
    versions = client.get("/v1/models").json()["versions"]
    return result, next(v for v in versions if not v["active"])


def labels_of(client: TestClient, texts: list[str]) -> list[str]:
    bodies = [{"text": text, "account": "TransNordRail"} for text in texts]
    return [client.post("/v1/routing/explain", json=b).json()["label"] for b in bodies]


@pytest.mark.slow
def test_a_retrain_on_corrections_fixes_a_systematic_error(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    assert labels_of(client, UNSEEN).count("schedule") == 0
    for i, text in enumerate(CORRECTED):
        posted: dict[str, Any] = client.post(
            "/v1/mentions", json=mention(f"c{i}", text, author={"handle": f"r{i}"})
        ).json()
        client.post(f"/v1/mentions/{posted['id']}/label", json={"label": "schedule"})

    result, new = train_a_version(client, database_url, tmp_path / "store", "--include-corrections")
    assert "training with 24 corrected mentions" in result.stdout
    assert Path(new["path"]) == (tmp_path / "store" / new["version"]).resolve()
    assert f"stored in {new['path']}" in result.stdout
    assert "corrections.jsonl" in new["details"]["training_data"]["sources"]
    assert client.post(f"/v1/models/{new['version']}/activate").status_code == 200

    assert labels_of(client, UNSEEN) == ["schedule"] * len(UNSEEN)


@pytest.mark.slow
def test_a_model_averaged_with_a_history_is_registered_and_serves(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    history = tmp_path / "history.jsonl"
    rows = [{"text": text, "label": "schedule"} for text in CORRECTED] + [
        {"text": f"Train {n} to Lille is {n} minutes late again", "label": "delay"}
        for n in range(10, 34)
    ]
    history.write_text("".join(json.dumps(row) + "\n" for row in rows))

    _, new = train_a_version(
        client, database_url, tmp_path / "store", "--average-seed", "--data", str(history)
    )
    assert [m["examples"] for m in new["details"]["members"]] == [48, len(seed_corpus())]
    assert client.post(f"/v1/models/{new['version']}/activate").status_code == 200

    assert labels_of(client, UNSEEN) == ["schedule"] * len(UNSEEN)
    # The seed model's labels, which the history lacks, are still served.
    assert labels_of(client, [PRESS_EN]) == ["press"]
    posted = client.post("/v1/mentions", json=mention("avg-1", DELAY_EN)).json()
    assert posted["classification"]["model_version"] == new["version"]


@pytest.mark.slow
def test_a_model_with_an_embeddings_member_learns_the_corrections_and_serves(
    client: TestClient, database_url: str, tmp_path: Path
) -> None:
    pytest.importorskip(embeddings.MODEL_PACKAGE)
    pytest.importorskip("sentence_transformers")
    for i, text in enumerate(CORRECTED):
        posted: dict[str, Any] = client.post(
            "/v1/mentions", json=mention(f"c{i}", text, author={"handle": f"r{i}"})
        ).json()
        client.post(f"/v1/mentions/{posted['id']}/label", json={"label": "schedule"})
    history = tmp_path / "history.jsonl"
    rows = [
        {"text": f"Train {n} to Lille is {n} minutes late again", "label": "delay"}
        for n in range(10, 34)
    ] + [{"text": f"My bag {n} never arrived in Lille", "label": "problem"} for n in range(24)]
    history.write_text("".join(json.dumps(row) + "\n" for row in rows))
    seed = _a_part_of_the_seed_corpus(tmp_path / "seed", per_label_and_language=20)

    _, new = train_a_version(
        client,
        database_url,
        tmp_path / "store",
        "--include-corrections",
        "--average-seed",
        "--embeddings",
        "--seed-dir",
        str(seed.parent),
        "--data",
        str(history),
    )

    history_member, seed_member, embeddings_member = new["details"]["members"]
    assert history_member["sources"] == ["history.jsonl", "corrections.jsonl"]
    assert history_member["examples"] == 72
    seed_size = len(seed.read_text().splitlines())
    assert seed_member["examples"] == seed_size
    assert embeddings_member["examples"] == seed_size + len(CORRECTED)
    assert embeddings_member["features"] == "sentence embeddings (all-MiniLM-L6-v2)"
    assert client.post(f"/v1/models/{new['version']}/activate").status_code == 200
    assert labels_of(client, UNSEEN) == ["schedule"] * len(UNSEEN)
    assert labels_of(client, [PRESS_EN]) == ["press"]
    posted = client.post("/v1/mentions", json=mention("emb-1", DELAY_EN)).json()
    assert posted["classification"]["model_version"] == new["version"]
    assert posted["classification"]["label"] == "delay"


def _a_part_of_the_seed_corpus(directory: Path, *, per_label_and_language: int) -> Path:
    """The first posts of each label and language of the seed corpus, in one file: embedding
    them takes seconds, the whole corpus a minute on two busy cores."""
    kept: dict[tuple[str, str | None], int] = {}
    rows = []
    for example in seed_corpus():
        key = (example.label, example.lang)
        kept[key] = kept.get(key, 0) + 1
        if kept[key] <= per_label_and_language:
            rows.append({"text": example.text, "label": example.label, "lang": example.lang})
    directory.mkdir()
    path = directory / "seed.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def test_a_refused_training_leaves_nothing_in_the_model_store(
    database_url: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"

    result = run_cli(
        "train", "--average-seed", database_url=database_url, AIGUILLEUR_MODEL_STORE=str(store)
    )

    assert result.returncode == 2
    assert "--average-seed averages a model of the --data and --corrections files" in result.stderr
    assert list(store.iterdir()) == []


@pytest.fixture
def writes_during_loads(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[bool]]:
    """Each load of a registered version first writes from another connection that does not
    wait (SQLite's BEGIN IMMEDIATE fails at once while the lock is held): True for each write
    that got in."""
    impatient = make_engine(settings.model_copy(update={"sqlite_busy_timeout_ms": 0}))
    real_load = registry.load
    written: list[bool] = []

    def load_while_another_process_writes(row: Any) -> TextClassifier:
        with impatient.begin():
            written.append(True)
        return real_load(row)

    monkeypatch.setattr(registry, "load", load_while_another_process_writes)
    yield written
    impatient.dispose()


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's database-wide write lock")
def test_a_process_starting_does_not_hold_the_write_lock_while_its_model_loads(
    engine: Engine, settings: Settings, writes_during_loads: list[bool]
) -> None:
    sessions = make_sessionmaker(engine)
    serving_module.at_start(sessions=sessions, settings=settings, given=None)  # registers it

    classifier = serving_module.at_start(sessions=sessions, settings=settings, given=None)

    assert writes_during_loads == [True]
    assert classifier.version == TextClassifier.load(settings.model_path).version


def second_process_meanwhile(
    sessions: sessionmaker[Session], first: Callable[[Session], Any], second: Callable[[], Any]
) -> list[BaseException]:
    """`second` starts (in a thread, as another process would) while `first`'s transaction is
    open, and goes on after it commits; what `second` raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            second()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    with sessions() as session, session.begin():
        first(session)
        thread.start()
        time.sleep(0.5)  # the second reaches the change lock and waits there
    thread.join(timeout=30)
    return errors


def test_two_processes_starting_on_a_new_database_register_the_model_once(
    engine: Engine, settings: Settings
) -> None:
    """uvicorn stops every worker when one fails to start: the second must not fail."""
    sessions = make_sessionmaker(engine)
    shipped = TextClassifier.load(settings.model_path)

    def register_first(first: Session) -> None:
        row = registry.register(session=first, model=shipped, directory=settings.model_path)
        registry.activate(session=first, row=row, actor="system:start")

    errors = second_process_meanwhile(
        sessions,
        register_first,
        lambda: serving_module.at_start(sessions=sessions, settings=settings, given=None),
    )

    assert errors == []
    with sessions() as session:
        assert [v.version for v in registry.list_versions(session=session)] == [shipped.version]
        assert registry.active(session=session) is not None


def test_two_activations_at_once_leave_one_version_active(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    sessions = make_sessionmaker(engine)
    serving_module.at_start(sessions=sessions, settings=settings, given=None)
    one = register(engine, copy_of_the_shipped_model(tmp_path / "one", "aiguilleur-one"))
    two = register(engine, copy_of_the_shipped_model(tmp_path / "two", "aiguilleur-two"))

    def activate(version: str) -> None:
        with sessions() as session, session.begin():
            registry.activate(
                session=session, row=registry.get(session=session, version=version), actor="t"
            )

    def activate_one(first: Session) -> None:
        registry.activate(session=first, row=registry.get(session=first, version=one), actor="t")

    errors = second_process_meanwhile(sessions, activate_one, lambda: activate(two))

    assert errors == []
    with sessions() as session:
        active = [v.version for v in registry.list_versions(session=session) if v.active]
    assert active == [two]


def test_a_process_that_loses_the_start_race_serves_the_version_the_winner_activated(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Another deployment's process, with another configured model, started first."""
    sessions = make_sessionmaker(engine)
    other_directory = copy_of_the_shipped_model(tmp_path / "other", "aiguilleur-other")
    other = TextClassifier.load(other_directory)
    served: list[Classifier] = []

    def register_first(first: Session) -> None:
        row = registry.register(session=first, model=other, directory=other_directory)
        registry.activate(session=first, row=row, actor="system:start")

    errors = second_process_meanwhile(
        sessions,
        register_first,
        lambda: served.append(
            serving_module.at_start(sessions=sessions, settings=settings, given=None)
        ),
    )

    assert errors == []
    assert [classifier.version for classifier in served] == ["aiguilleur-other"]


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's database-wide write lock")
def test_activating_from_the_command_line_does_not_hold_the_write_lock_while_loading(
    engine: Engine, settings: Settings, tmp_path: Path, writes_during_loads: list[bool]
) -> None:
    serving_module.at_start(sessions=make_sessionmaker(engine), settings=settings, given=None)
    other = register(engine, copy_of_the_shipped_model(tmp_path / "m2", "aiguilleur-cli"))

    status = commands.activate_model(argparse.Namespace(version=other), settings)

    assert (status, writes_during_loads) == (0, [True])
    with make_sessionmaker(engine)() as session:
        assert registry.active(session=session).version == other  # type: ignore[union-attr]


@pytest.mark.skipif(not POSTGRES_URL, reason="advisory locks are PostgreSQL's")
def test_an_activation_behind_a_hung_change_fails_in_bounded_time_and_changes_nothing(
    client: TestClient, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_db, "CHANGE_LOCK_WAIT_SECONDS", 0.3)
    other = register(engine, copy_of_the_shipped_model(tmp_path / "m2", "aiguilleur-test-2"))
    before = serving(client)

    with make_sessionmaker(engine)() as hung, hung.begin():
        registry.lock_changes(session=hung)  # a change that never ends
        started = time.monotonic()
        response = client.post(f"/v1/models/{other}/activate")
        waited = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert waited < 10
    assert serving(client) == before
    assert client.post(f"/v1/models/{other}/activate").status_code == 200  # the lock is free
