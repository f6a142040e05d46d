"""Fixtures of the ml tests."""

import functools

import pytest

from ml import embeddings
from tests.ml.examples import SMALL_SET


@functools.cache
def _small_seed_baseline() -> embeddings.EmbeddingClassifier:
    return embeddings.fit(SMALL_SET)


@pytest.fixture(autouse=True)
def quick_embeddings_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the extra is installed, `evaluate` scores the sentence-embeddings baseline: here it
    learns SMALL_SET, fitted once a process, rather than the 3,139 seed posts (a minute on two
    busy cores). Without the extra it fails as the real one does, and is reported missing."""
    monkeypatch.setattr(embeddings, "_seed_baseline", _small_seed_baseline)
