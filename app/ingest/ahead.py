"""Classifying an import's next chunk in a helper process while this process stores the current one.

The model (a fifth to a third of a post's cost) and the writes each keep a core busy. The helper
loads the model this service would serve (the active registered version) through its own
connection, and answers one chunk's texts at a time; at most two chunks are in flight, so the
helper stays one chunk ahead and memory stays bounded.
"""

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Any, TypeVar

from app.classify.service import Classifier, Verdict
from app.config import Settings

T = TypeVar("T")


class HelperFailed(Exception):
    """The helper process could not load the model, or died."""


class ClassifyingHelper:
    """A process that classifies texts with the served model; a context manager."""

    def __init__(self, settings: Settings) -> None:
        # spawn, not fork: this process may hold database connections and threads.
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load,
            initargs=(settings,),
        )

    def __enter__(self) -> "ClassifyingHelper":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start(self) -> None:
        """Start the helper now (it loads the model while the caller does other work)."""
        self._submit(_ready)

    def verdicts(self, chunks: Iterable[Sequence[str]]) -> Iterator[list[Verdict]]:
        """Each chunk's verdicts in order, the next chunk classified while the caller uses these."""
        pending: deque[Future[list[Verdict]]] = deque()
        for texts in chunks:
            pending.append(self._submit(_classify, list(texts)))
            if len(pending) > 1:
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())

    def _submit(self, work: Callable[..., T], *args: Any) -> "Future[T]":
        try:
            return self._pool.submit(work, *args)
        except BrokenProcessPool as error:  # the helper died since the last chunk
            raise HelperFailed("the classifying process died") from error


def _result(future: "Future[list[Verdict]]") -> list[Verdict]:
    try:
        return future.result()
    except BrokenProcessPool as error:
        raise HelperFailed("the classifying process died") from error


# In the helper process: the classifier, or why it could not be loaded.
_classifier: Classifier | None = None
_failure: str | None = None


def _load(settings: Settings) -> None:
    global _classifier, _failure
    engine = None
    try:
        # Imported here: the helper needs the model code, the parent's import of this module
        # does not.
        from app import heap
        from app.classify import serving
        from app.db import make_engine, make_sessionmaker

        engine = make_engine(settings)
        _classifier = serving.at_start(
            sessions=make_sessionmaker(engine), settings=settings, given=None
        )
        heap.settle()
    except Exception as error:  # reported to the parent with the first chunk
        _failure = f"{type(error).__name__}: {error}"
    finally:
        if engine is not None:
            engine.dispose()


def _ready() -> None:
    return None


def _classify(texts: list[str]) -> list[Verdict]:
    if _classifier is None:
        raise HelperFailed(f"the classifying process could not load the model: {_failure}")
    return _classifier.classify(texts)
