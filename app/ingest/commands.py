"""`aiguilleur import FILE`: mentions in bulk from CSV or JSON lines (a CRM's history, say)."""

import argparse
from pathlib import Path

from app.config import Settings


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "import",
        help="ingest mentions from a CSV or JSON lines file (checked whole before writing)",
    )
    parser.add_argument("file", type=Path)
    parser.add_argument("--format", choices=["csv", "jsonl"], default=None)
    parser.add_argument(
        "--chunk", type=int, default=None, help="mentions per transaction (max_batch_items)"
    )
    parser.add_argument(
        "--helper",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="classify in a helper process while this one writes (default: on SQLite, with "
        "more than one CPU, for a file of 8 MB or more)",
    )
    parser.set_defaults(handler=import_file)


def import_file(args: argparse.Namespace, settings: Settings) -> int:
    """Check every line, then ingest in transactions of `--chunk`; nothing is written if any
    line is refused. Posts already stored count as duplicates, so a re-run is harmless."""
    # The model code takes seconds to import: only this command pays for it.
    from app.ingest import importer

    return importer.import_file(
        args.file, file_format=args.format, chunk=args.chunk, settings=settings, helper=args.helper
    )
