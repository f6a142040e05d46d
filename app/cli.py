"""The `aiguilleur` command: serve, migrate, config apply, train, evaluate."""

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError

from app.access import commands as access_commands
from app.accounts import commands as accounts_commands
from app.classify import commands as classify_commands
from app.config import Settings, get_settings
from app.db import in_transaction
from app.errors import AppError
from app.ingest import commands as ingest_commands
from app.routing import commands as routing_commands
from app.worker import commands as worker_commands
from app.x import commands as x_commands


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; configuration and database errors end with a message and status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(argv)
    except AppError as error:
        return _fail(error.message, error.details)
    except ValidationError as error:
        details = [
            {"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors(include_input=False)
        ]
        what = "AIGUILLEUR_* setting" if error.title == "Settings" else "argument"
        return _fail(f"invalid {what}", details)
    except (IntegrityError, OperationalError) as error:
        return _fail(f"database: {type(error.orig).__name__}: {str(error.orig).splitlines()[0]}")


def _run(argv: list[str]) -> int:
    settings = get_settings()
    if argv and argv[0] in _ML_COMMANDS:  # their own parsers own every option after the name
        return _ML_COMMANDS[argv[0]](argv[1:], settings)
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    result: int = args.handler(args, settings)
    return result


def _fail(message: str, details: object = None) -> int:
    print(f"error: {message}", file=sys.stderr)
    if details:
        print(f"details: {details}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiguilleur", description="Routes mentions to the team in charge."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP API (migrates first on SQLite)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--config", type=Path, default=None, help="configuration file to load at start"
    )
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="apply the database migrations")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(handler=_migrate)

    config = commands.add_parser("config", help="configuration files")
    config_commands = config.add_subparsers(required=True, metavar="ACTION")
    apply = config_commands.add_parser(
        "apply", help="load accounts, teams and routing table from a file"
    )
    apply.add_argument("file", type=Path)
    apply.set_defaults(handler=_config_apply)

    for domain in (
        access_commands,
        accounts_commands,
        routing_commands,
        worker_commands,
        classify_commands,
        x_commands,
        ingest_commands,
    ):
        domain.add_commands(commands)

    commands.add_parser("train", help="train the classifier (see `aiguilleur train -h`)")
    commands.add_parser(
        "evaluate", help="evaluate a model on labelled files (see `aiguilleur evaluate -h`)"
    )
    commands.add_parser(
        "protocol", help="in-domain benchmark protocols (see `aiguilleur protocol -h`)"
    )
    return parser


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from app import schema
    from app.db import make_engine

    engine = make_engine(settings)
    schema.upgrade(engine, args.revision)
    print(f"database at revision {schema.current(engine)}")
    engine.dispose()
    return 0


def _config_apply(args: argparse.Namespace, settings: Settings) -> int:
    from app.configuration import service as configuration

    config = configuration.read_file(args.file)
    applied = in_transaction(
        settings,
        lambda session: configuration.apply(session=session, config=config, source=str(args.file)),
    )
    print(
        f"applied {args.file}: {applied.accounts} accounts, {applied.teams} teams, routing table "
        f"version {applied.routing_version} ({'new' if applied.routing_changed else 'unchanged'})"
    )
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.main import create_app

    if not _schema_ready(settings):
        print(
            "error: the database schema is not at the latest revision; run `aiguilleur migrate`",
            file=sys.stderr,
        )
        return 2
    _apply_start_configuration(args.config or settings.config_file, settings)
    if settings.is_sqlite:
        access_commands.print_first_admin_key(settings)
    if args.workers > 1:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
        )
    else:
        uvicorn.run(create_app(settings), host=args.host, port=args.port)
    return 0


def _schema_ready(settings: Settings) -> bool:
    """On the embedded default, migrate; elsewhere migrating is an operator's step of its own."""
    from app import schema
    from app.db import make_engine

    engine = make_engine(settings)
    try:
        if settings.is_sqlite:
            schema.upgrade(engine)
        return schema.current(engine) == schema.head()
    finally:
        engine.dispose()


def _apply_start_configuration(config_file: Path | None, settings: Settings) -> None:
    """Apply the file if there is one; a database still without routing gets the defaults."""
    from app.configuration import service as configuration

    if config_file is not None:
        _config_apply(argparse.Namespace(file=config_file), settings)
    applied = in_transaction(
        settings, lambda session: configuration.apply_defaults_if_empty(session=session)
    )
    if applied is not None:
        print(f"no routing table yet: installed the default {applied.teams} teams and table")


def _evaluate(rest: list[str], settings: Settings) -> int:
    from ml import evaluate

    if "--model" not in rest:
        rest += ["--model", str(settings.model_path)]
    if "--threshold" not in rest:
        rest += ["--threshold", str(settings.confidence_threshold)]
    return evaluate.main(rest)


def _protocol(rest: list[str], settings: Settings) -> int:
    from ml import protocol

    return protocol.main(rest)


_ML_COMMANDS = {"train": classify_commands.train, "evaluate": _evaluate, "protocol": _protocol}


if __name__ == "__main__":
    raise SystemExit(main())
