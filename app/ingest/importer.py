"""The import of a file of mentions: check it whole, then ingest it in transactions."""

import itertools
import os
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from app import checkpoints, heap
from app.accounts import service as accounts
from app.classify import serving
from app.classify.service import Classifier, Verdict
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.ingest import files, service
from app.ingest.ahead import ClassifyingHelper, HelperFailed
from app.ingest.files import Format, Read, Refusal

SHOWN_REFUSALS = 20
# A helper process takes 3 to 4 s to start and load the model; on SQLite it pays for itself
# from about 40,000 mentions, some 8 MB of JSON lines. On PostgreSQL it is not started unless
# asked for: measured with the server on the same two cores, it slowed the import down.
HELPER_MIN_BYTES = 8_000_000


def import_file(
    path: Path,
    *,
    file_format: Format | None,
    chunk: int | None,
    settings: Settings,
    helper: bool | None = None,
) -> int:
    """Ingest the file's mentions; 2 (and nothing written) if any line is refused, 1 if the
    classifying helper fails. `helper`: classify in a helper process, ahead of the writes
    (None: on SQLite, if the machine has more than one CPU and the file is large)."""
    started = time.monotonic()
    if helper is None:
        helper = helper_pays(path, settings, cpus=os.cpu_count() or 1)
    with ClassifyingHelper(settings) if helper else nullcontext() as ahead:
        if ahead is not None:
            ahead.start()  # the model loads there while this process reads the file
        try:
            content = files.read(path, files.format_of(path, file_format))
        except (OSError, ValueError) as error:  # no such file; a format that cannot be told
            print(f"error: {error}", file=sys.stderr)
            return 2
        engine = make_engine(settings, background_checkpoints=True)
        try:
            sessions = make_sessionmaker(engine)
            refused = content.refused + _unknown_accounts(sessions, content)
            if refused:
                return _refuse(path, refused)
            size = min(chunk or settings.max_batch_items, settings.max_batch_items)
            with checkpoints.running(engine, every_seconds=settings.sqlite_checkpoint_seconds):
                created = _ingest(sessions, ahead, content, size, settings)
        except HelperFailed as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        finally:
            engine.dispose()
    total = len(content.mentions)
    print(
        f"imported {path}: {total} mentions, {created} new, {total - created} already "
        f"stored, in {time.monotonic() - started:.1f} s"
    )
    return 0


def helper_pays(path: Path, settings: Settings, *, cpus: int) -> bool:
    """Whether a classifying helper is worth starting for this file (see HELPER_MIN_BYTES)."""
    sqlite = make_url(settings.database_url).get_backend_name() == "sqlite"
    return sqlite and cpus > 1 and _size(path) >= HELPER_MIN_BYTES


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # reported when the file is read
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
    ahead: ClassifyingHelper | None,
    content: Read,
    chunk: int,
    settings: Settings,
) -> int:
    """Ingest in transactions of `chunk` mentions; the number of mentions new to the database.
    Without a helper, the model is loaded here and classifies each chunk's new posts."""
    mentions = content.mentions
    chunks = [mentions[start : start + chunk] for start in range(0, len(mentions), chunk)]
    classifier: Classifier | None = None
    verdicts: Iterator[list[Verdict] | None]
    if ahead is not None:
        verdicts = ahead.verdicts([m.text for m in part] for part in chunks)
    else:
        classifier = serving.at_start(sessions=sessions, settings=settings, given=None)
        heap.settle()
        verdicts = itertools.repeat(None)
    created = 0
    with tqdm(total=len(mentions), unit=" mentions", file=sys.stderr, disable=None) as progress:
        for part, given in zip(chunks, verdicts, strict=False):
            with sessions() as session:
                outcomes = service.ingest(
                    session=session,
                    classifier=classifier,
                    mentions=part,
                    limit=chunk,
                    reopen_within=settings.reopen_window,
                    verdicts=given,
                )
                session.commit()
            created += sum(outcome.created for outcome in outcomes)
            progress.update(len(outcomes))
    return created
