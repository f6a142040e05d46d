"""Micro-batching of single-mention requests: group commit.

Per-call costs dominate one mention: a model call, a transaction, a commit. Requests that arrive
while the previous group is being written wait (at most `wait` seconds more) and are ingested
together: one model call, one transaction, one commit; then each request gets its own answer,
after the commit. A group that fails is retried one mention at a time, each in its own
transaction, so that a bad item fails alone.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.classify.service import Classifier
from app.config import Settings
from app.ingest import service
from app.ingest.schemas import MentionIn, MentionRead

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """One request's result: the mention as stored, and whether this request stored it."""

    mention: MentionRead
    created: bool


Outcome = Answer | Exception
Work = Callable[[Sequence[MentionIn]], list[Outcome]]


class Batcher:
    """Collects the mentions posted one by one to this process and ingests them in groups, in a
    thread of its own (one group at a time)."""

    def __init__(self, work: Work, *, max_items: int, wait: float) -> None:
        self._work = work
        self._max_items = max_items
        self._wait = wait
        self._queue: list[tuple[MentionIn, asyncio.Future[Outcome]]] = []
        self._arrived = asyncio.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiguilleur-ingest")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ingest-batcher")

    async def stop(self) -> None:
        """Answer what is queued, then stop."""
        self._stopping = True
        self._arrived.set()
        if self._task is not None:
            await self._task
        self._thread.shutdown(wait=True)

    async def ingest(self, mention: MentionIn) -> Answer:
        """Ingest one mention with whatever else is arriving; its answer once committed."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((mention, future))
        self._arrived.set()
        outcome = await future
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            if self._stopping and not self._queue:
                return
            if self._wait and len(self._queue) < self._max_items:
                await asyncio.sleep(self._wait)
            group, self._queue = self._queue[: self._max_items], self._queue[self._max_items :]
            if not self._queue:
                self._arrived.clear()
            mentions = [mention for mention, _ in group]
            try:
                outcomes = await loop.run_in_executor(self._thread, self._work, mentions)
            except Exception as error:  # the work answers per item; this is a bug, not an item
                log.exception("ingest of a group of %d failed", len(group))
                outcomes = [error] * len(group)
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if not future.done():  # the client may have gone: its mention is stored anyway
                    future.set_result(outcome)


def ingest_group(
    mentions: Sequence[MentionIn],
    *,
    state: Any,
    settings: Settings,
) -> list[Outcome]:
    """Ingest the group in one transaction; if that fails, each mention in its own."""
    try:
        return _together(mentions, state=state, settings=settings)
    except Exception as error:
        if len(mentions) == 1:
            return [error]
        log.warning("a group of %d mentions failed (%r): one by one", len(mentions), error)
    return [_alone(mention, state=state, settings=settings) for mention in mentions]


def _alone(mention: MentionIn, *, state: Any, settings: Settings) -> Outcome:
    try:
        [answer] = _together([mention], state=state, settings=settings)
        return answer
    except Exception as error:
        return error


def _together(mentions: Sequence[MentionIn], *, state: Any, settings: Settings) -> list[Outcome]:
    sessions: sessionmaker[Session] = state.sessionmaker
    readers: sessionmaker[Session] = state.read_sessionmaker
    classifier: Classifier = state.classifier  # read per group: a model switch applies at once
    with sessions() as session:
        outcomes = service.ingest(
            session=session,
            classifier=classifier,
            mentions=mentions,
            limit=len(mentions),
            reopen_within=settings.reopen_window,
        )
        session.commit()
    with readers() as reader:
        reads = service.reads(session=reader, outcomes=outcomes)
    return [
        Answer(mention=read, created=outcome.created)
        for outcome, read in zip(outcomes, reads, strict=True)
    ]


def for_app(state: Any, settings: Settings) -> Batcher:
    """The batcher of a running application (its sessions, its current model)."""

    def work(mentions: Sequence[MentionIn]) -> list[Outcome]:
        return ingest_group(mentions, state=state, settings=settings)

    return Batcher(
        work,
        max_items=settings.ingest_group_max_items,
        wait=settings.ingest_group_wait_ms / 1000,
    )
