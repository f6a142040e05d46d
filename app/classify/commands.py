"""`aiguilleur train|models|export-training`: the model lifecycle from the command line.

`train` wraps `ml.train` (which never imports the service): it adds the agents' corrections as
training data if asked, writes the new version to the model store and registers it.
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.config import Settings
from app.db import in_transaction

if TYPE_CHECKING:
    pass

# The model code (scikit-learn, skops) takes a second to import: each command imports it when it
# runs, so that the other `aiguilleur` commands start fast.


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    models = commands.add_parser("models", help="registered model versions")
    actions = models.add_subparsers(required=True, metavar="ACTION")
    actions.add_parser("list", help="the versions, the active one marked").set_defaults(
        handler=list_models
    )
    activate = actions.add_parser("activate", help="serve this version (running services follow)")
    activate.add_argument("version")
    activate.set_defaults(handler=activate_model)
    export = commands.add_parser("export-training", help="agents' label corrections as JSON lines")
    export.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    export.set_defaults(handler=export_training)


def list_models(args: argparse.Namespace, settings: Settings) -> int:
    from app.classify import registry

    rows = in_transaction(
        settings,
        lambda session: [
            (m.version, m.active, m.created_at, m.path, m.metrics)
            for m in registry.list_versions(session=session)
        ],
    )
    for version, active, created_at, path, metrics in rows:
        mark = "*" if active else " "
        print(f"{mark} {version}  created {created_at:%Y-%m-%d %H:%M}  {path}  {metrics}")
    return 0


def activate_model(args: argparse.Namespace, settings: Settings) -> int:
    from app.classify import registry

    def check(session: Session) -> None:
        registry.load(registry.get(session=session, version=args.version))

    def activate(session: Session) -> bool:
        row = registry.get(session=session, version=args.version)
        return registry.activate(session=session, row=row, actor="cli") is not None

    # Refuse a version whose files cannot be served; loading takes seconds, so not while
    # holding SQLite's write lock, which would stall every other process's writes.
    in_transaction(settings, check, read_only=True)
    changed = in_transaction(settings, activate)
    state = "active" if changed else "already the active version"
    print(
        f"model {args.version}: {state}; running services switch within "
        f"{settings.model_refresh_seconds:g} s"
    )
    return 0


def export_training(args: argparse.Namespace, settings: Settings) -> int:
    count = _export(settings, args.out, text_field="text", label_field="label")
    print(f"{count} corrected mentions exported", file=sys.stderr)
    return 0


def _export(settings: Settings, out: Path | None, *, text_field: str, label_field: str) -> int:
    from app.classify import corrections

    rows = in_transaction(settings, lambda s: list(corrections.training_rows(session=s)))
    lines = [
        json.dumps({**row, text_field: row["text"], label_field: row["label"]}, ensure_ascii=False)
        for row in rows
    ]
    document = "".join(line + "\n" for line in lines)
    if out is None:
        sys.stdout.write(document)
    else:
        out.write_text(document, encoding="utf-8")
    return len(rows)


def train(rest: list[str], settings: Settings) -> int:
    """`aiguilleur train [--include-corrections] [--no-register] [ml.train options]`."""
    from ml import train as ml_train

    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--include-corrections", action="store_true")
    ours.add_argument("--no-register", action="store_true")
    options, rest = ours.parse_known_args(rest)
    if "-h" in rest or "--help" in rest:
        print("aiguilleur train [--include-corrections] [--no-register], then:")
        return ml_train.main(rest)
    fields = ml_train.parser().parse_known_args(rest)[0]
    with tempfile.TemporaryDirectory() as scratch:
        if options.include_corrections:
            path = Path(scratch) / "corrections.jsonl"
            count = _export(
                settings, path, text_field=fields.text_field, label_field=fields.label_field
            )
            print(f"training with {count} corrected mentions")
            rest += ["--corrections", str(path)]
        return _train_and_register(rest, settings, register=not options.no_register)


def _train_and_register(rest: list[str], settings: Settings, *, register: bool) -> int:
    from app.classify import registry
    from ml import train as ml_train
    from ml.model import TextClassifier

    out_given = any(arg == "--out" or arg.startswith("--out=") for arg in rest)
    if out_given:
        directory: Path = ml_train.parser().parse_known_args(rest)[0].out.resolve()
    else:
        settings.model_store.mkdir(parents=True, exist_ok=True)
        directory = Path(tempfile.mkdtemp(dir=settings.model_store, prefix=".training-"))
        rest += ["--out", str(directory)]
    status = 1
    try:
        status = ml_train.main(rest)
    finally:
        if status != 0 and not out_given:  # a refused option exits: leave no staging behind
            shutil.rmtree(directory, ignore_errors=True)
    if status != 0:
        return status
    if not out_given:
        directory = _settle(directory, settings.model_store)
        print(f"stored in {directory}")  # the line above named the staging folder
    if register:
        model = TextClassifier.load(directory)
        in_transaction(
            settings,
            lambda session: registry.register(session=session, model=model, directory=directory),
        )
        print(
            f"registered model {model.version} (not active yet): "
            f"aiguilleur models activate {model.version}"
        )
    return 0


def _settle(staging: Path, store: Path) -> Path:
    """Move a freshly trained model to `store/<version>`; the same version twice is one copy."""
    from ml.model import TextClassifier

    version = TextClassifier.load(staging).version
    final = store / version
    if final.exists():
        shutil.rmtree(staging)
    else:
        staging.rename(final)
    return final.resolve()
