"""The import of a file of mentions: check it whole, then ingest it in transactions."""

import sys
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from app import heap
from app.accounts import service as accounts
from app.classify import serving
from app.classify.service import Classifier
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.ingest import files, service
from app.ingest.files import Format, Read, Refusal

SHOWN_REFUSALS = 20


def import_file(
    path: Path, *, file_format: Format | None, chunk: int | None, settings: Settings
) -> int:
    """Ingest the file's mentions; 2 (and nothing written) if any line is refused."""
    started = time.monotonic()
    try:
        content = files.read(path, files.format_of(path, file_format))
    except (OSError, ValueError) as error:  # no such file; a format that cannot be told
        print(f"error: {error}", file=sys.stderr)
        return 2
    engine = make_engine(settings)
    try:
        sessions = make_sessionmaker(engine)
        refused = content.refused + _unknown_accounts(sessions, content)
        if refused:
            return _refuse(path, refused)
        classifier = serving.at_start(sessions=sessions, settings=settings, given=None)
        heap.settle()
        size = min(chunk or settings.max_batch_items, settings.max_batch_items)
        created = _ingest(sessions, classifier, content, size, settings)
    finally:
        engine.dispose()
    total = len(content.mentions)
    print(
        f"imported {path}: {total} mentions, {created} new, {total - created} already "
        f"stored, in {time.monotonic() - started:.1f} s"
    )
    return 0


def _unknown_accounts(sessions: sessionmaker[Session], content: Read) -> list[Refusal]:
    handles = {mention.account for mention in content.mentions}
    with sessions() as session:
        known = accounts.by_handles(session=session, handles=handles)
    return [
        Refusal(line, f"account: {mention.account!r} is not a watched account")
        for mention, line in zip(content.mentions, content.lines, strict=True)
        if mention.account not in known
    ]


def _refuse(path: Path, refused: list[Refusal]) -> int:
    refused.sort(key=lambda refusal: refusal.line)
    print(f"error: {path}: {len(refused)} lines refused; nothing was imported", file=sys.stderr)
    for refusal in refused[:SHOWN_REFUSALS]:
        print(f"  line {refusal.line}: {refusal.reason}", file=sys.stderr)
    if len(refused) > SHOWN_REFUSALS:
        print(f"  ... and {len(refused) - SHOWN_REFUSALS} more", file=sys.stderr)
    return 2


def _ingest(
    sessions: sessionmaker[Session],
    classifier: Classifier,
    content: Read,
    chunk: int,
    settings: Settings,
) -> int:
    """Ingest in transactions of `chunk` mentions; the number of mentions new to the database."""
    created = 0
    mentions = content.mentions
    with tqdm(total=len(mentions), unit=" mentions", file=sys.stderr, disable=None) as progress:
        for start in range(0, len(mentions), chunk):
            with sessions() as session:
                outcomes = service.ingest(
                    session=session,
                    classifier=classifier,
                    mentions=mentions[start : start + chunk],
                    limit=chunk,
                    reopen_within=settings.reopen_window,
                )
                session.commit()
            created += sum(outcome.created for outcome in outcomes)
            progress.update(len(outcomes))
    return created
