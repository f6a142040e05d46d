"""The `aiguilleur` command: serve, migrate, config apply, train, evaluate."""

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app.config import PACKAGED_MODEL_PATH, Settings, get_settings
from app.errors import AppError

if TYPE_CHECKING:
    import threading

T = TypeVar("T")


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

    _add_keys(commands)
    _add_routes(commands)

    worker = commands.add_parser("worker", help="run the background jobs (SLA timers, leases)")
    worker.add_argument("--once", action="store_true", help="run one pass and exit")
    worker.set_defaults(handler=_worker)

    commands.add_parser("train", help="train the classifier (see `aiguilleur train -h`)")
    commands.add_parser(
        "evaluate", help="evaluate a model on labelled files (see `aiguilleur evaluate -h`)"
    )
    commands.add_parser(
        "protocol", help="in-domain benchmark protocols (see `aiguilleur protocol -h`)"
    )
    return parser


def _add_keys(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    keys = commands.add_parser("keys", help="API keys")
    actions = keys.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        dest="scopes",
        help="ingest, queue:<team>, routing:write or admin (repeat for several)",
    )
    create.set_defaults(handler=_keys_create)
    actions.add_parser("list", help="list keys (never their secrets)").set_defaults(
        handler=_keys_list
    )
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_keys_revoke)


def _add_routes(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    routes = commands.add_parser("routes", help="routing tables")
    actions = routes.add_subparsers(required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="check a routing table file, store nothing")
    validate.add_argument("file", type=Path)
    validate.set_defaults(handler=_routes_validate)
    apply = actions.add_parser("apply", help="make a routing table file the active version")
    apply.add_argument("file", type=Path)
    apply.set_defaults(handler=_routes_apply)


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.access import service as access
    from app.access.schemas import KeyCreate

    key_in = KeyCreate(name=args.name, scopes=args.scopes)
    key_id, token = _in_transaction(
        settings, lambda session: _created_key(access.create(session=session, key_in=key_in))
    )
    print(f"key {key_id} ({args.name}: {', '.join(sorted(set(args.scopes)))})")
    print(f"secret, shown this once: {token}")
    return 0


def _created_key(created: tuple[Any, str]) -> tuple[str, str]:
    key, token = created
    return str(key.key_id), token


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.access import service as access

    rows = _in_transaction(
        settings,
        lambda session: [
            (k.key_id, k.name, " ".join(k.scopes), k.created_at, k.revoked_at)
            for k in access.list_keys(session=session)
        ],
    )
    for key_id, name, scopes, created_at, revoked_at in rows:
        state = f"revoked {revoked_at:%Y-%m-%d %H:%M}" if revoked_at else "active"
        print(f"{key_id}  {name:<24} {scopes:<40} created {created_at:%Y-%m-%d %H:%M}  {state}")
    return 0


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from app.access import service as access

    name = _in_transaction(
        settings, lambda session: access.revoke(session=session, key_id=args.key_id).name
    )
    print(f"revoked key {args.key_id} ({name})")
    return 0


def _routes_validate(args: argparse.Namespace, settings: Settings) -> int:
    from app.configuration import service as configuration
    from app.routing import service as routing

    spec = configuration.read_routing_file(args.file)
    _in_transaction(settings, lambda session: routing.check_table(session=session, spec=spec))
    print(f"{args.file}: valid, {len(spec.rules)} rules, checksum {routing.checksum(spec)[:12]}")
    return 0


def _routes_apply(args: argparse.Namespace, settings: Settings) -> int:
    from app.configuration import service as configuration
    from app.routing import service as routing

    spec = configuration.read_routing_file(args.file)
    version, changed = _in_transaction(
        settings,
        lambda session: _applied(
            routing.apply_table(session=session, spec=spec, source=f"cli:{args.file}")
        ),
    )
    state = "new, active" if changed else "unchanged: it is the active table"
    print(f"routing table version {version} ({state})")
    return 0


def _applied(result: tuple[Any, bool]) -> tuple[int, bool]:
    table, changed = result
    return int(table.version), changed


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import threading

    from app.db import make_engine, make_sessionmaker, utcnow
    from app.worker import service as worker

    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    try:
        if args.once:
            swept = worker.run_once(sessions=sessions, now=utcnow())
            print(
                f"{swept.warnings} warnings, {swept.breaches} breaches, "
                f"{swept.leases_released} leases released"
            )
            return 0
        stop = threading.Event()
        _stop_on_signals(stop)
        worker.run_forever(sessions=sessions, interval=settings.worker_interval_seconds, stop=stop)
        return 0
    finally:
        engine.dispose()


def _stop_on_signals(stop: "threading.Event") -> None:
    import signal

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())


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
    applied = _in_transaction(
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
        _first_admin_key(settings)
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


def _first_admin_key(settings: Settings) -> None:
    """On the embedded default, a database without keys gets an admin key, printed this once."""
    from app.access import service as access
    from app.access.schemas import KeyCreate

    def create(session: Session) -> str | None:
        if access.has_any(session=session):
            return None
        _, token = access.create(
            session=session, key_in=KeyCreate(name="first-admin", scopes=["admin"])
        )
        return token

    token = _in_transaction(settings, create)
    if token is not None:
        print(f"first admin API key (shown once, keep it): {token}", flush=True)


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
    applied = _in_transaction(
        settings, lambda session: configuration.apply_defaults_if_empty(session=session)
    )
    if applied is not None:
        print(f"no routing table yet: installed the default {applied.teams} teams and table")


def _in_transaction(settings: Settings, work: Callable[[Session], T]) -> T:
    """Run work in one transaction on a short-lived engine."""
    from app.db import make_engine, make_sessionmaker

    engine = make_engine(settings)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            return work(session)
    finally:
        engine.dispose()


def _train(rest: list[str], settings: Settings) -> int:
    from ml import train

    if "--out" not in rest:
        rest += ["--out", str(PACKAGED_MODEL_PATH)]
    return train.main(rest)


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


_ML_COMMANDS = {"train": _train, "evaluate": _evaluate, "protocol": _protocol}


if __name__ == "__main__":
    raise SystemExit(main())
