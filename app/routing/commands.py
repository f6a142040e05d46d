"""`aiguilleur routes validate|apply FILE`: the routing table from the command line."""

import argparse
from pathlib import Path

from sqlalchemy.orm import Session

from app.config import Settings
from app.configuration import service as configuration
from app.db import in_transaction
from app.routing import service as routing


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    routes = commands.add_parser("routes", help="routing tables")
    actions = routes.add_subparsers(required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="check a routing table file, store nothing")
    validate.add_argument("file", type=Path)
    validate.set_defaults(handler=validate_file)
    apply = actions.add_parser("apply", help="make a routing table file the active version")
    apply.add_argument("file", type=Path)
    apply.set_defaults(handler=apply_file)


def validate_file(args: argparse.Namespace, settings: Settings) -> int:
    spec = configuration.read_routing_file(args.file)
    in_transaction(settings, lambda session: routing.check_table(session=session, spec=spec))
    print(f"{args.file}: valid, {len(spec.rules)} rules, checksum {routing.checksum(spec)[:12]}")
    return 0


def apply_file(args: argparse.Namespace, settings: Settings) -> int:
    spec = configuration.read_routing_file(args.file)

    def apply(session: Session) -> tuple[int, bool]:
        table, changed = routing.apply_table(session=session, spec=spec, source=f"cli:{args.file}")
        return table.version, changed

    version, changed = in_transaction(settings, apply)
    state = "new, active" if changed else "unchanged: it is the active table"
    print(f"routing table version {version} ({state})")
    return 0
