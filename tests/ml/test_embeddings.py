"""The sentence-embedding baseline: trained and used where its extra is installed, named where not."""

import socket
import sys
from typing import Any

import numpy as np
import pytest

from ml import embeddings
from ml.classifier import AveragedProbabilities
from ml.dataset import Example
from ml.evaluate import evaluate, format_report
from ml.features import normalise
from ml.model import TextClassifier
from ml.params import TrainingParams
from ml.train import fit
from tests.ml.examples import SMALL_SET


@pytest.fixture(scope="module")
def extra() -> None:
    """Skips a test where the `embeddings` extra is not installed (as in CI, which has `.[dev]`)."""
    pytest.importorskip(embeddings.MODEL_PACKAGE)
    pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def baseline(extra: None) -> embeddings.EmbeddingClassifier:
    return embeddings.fit(SMALL_SET)


def test_predicts_known_labels_with_a_distribution(
    baseline: embeddings.EmbeddingClassifier,
) -> None:
    texts = ["Is the 8:15 to Paris running today?", "Mon colis n'est jamais arrivé", "great job"]

    predictions = baseline.predict(texts)

    assert len(predictions) == 3
    for prediction in predictions:
        assert set(prediction.probabilities) == {e.label for e in SMALL_SET}
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        best = max(prediction.probabilities.items(), key=lambda pair: pair[1])
        assert prediction.label == best[0]
        # The distribution is rounded to 6 decimals, the probability is not.
        assert prediction.probabilities[prediction.label] == pytest.approx(
            prediction.probability, abs=5e-7
        )


def test_learns_its_training_posts(baseline: embeddings.EmbeddingClassifier) -> None:
    predictions = baseline.predict([e.text for e in SMALL_SET])

    assert [p.label for p in predictions] == [e.label for e in SMALL_SET]


def test_training_and_prediction_are_deterministic(
    baseline: embeddings.EmbeddingClassifier,
) -> None:
    texts = ["the train is late", "merci !", "who do I call about my refund?"]

    again = embeddings.fit(SMALL_SET).predict(texts)

    assert [p.label for p in again] == [p.label for p in baseline.predict(texts)]
    for first, second in zip(baseline.predict(texts), again, strict=True):
        assert first.probabilities == pytest.approx(second.probabilities, abs=1e-6)


def test_the_model_loads_from_the_package_without_the_network(
    extra: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the embeddings baseline tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    embeddings._load.cache_clear()

    vectors = embeddings.embed(["my train is late", "mon train est en retard"])

    assert vectors.shape == (2, embeddings.DIMENSIONS)
    assert (vectors**2).sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-4)


def test_evaluate_adds_an_embeddings_row(extra: None, model: TextClassifier) -> None:
    report = evaluate(model, SMALL_SET, threshold=0.45)

    assert report["baselines"]["embeddings"]["accuracy"] == 1.0
    assert report["baselines_not_installed"] == {}
    assert "baseline: embeddings" in format_report("small", report)


def test_without_the_extra_the_report_says_it_is_not_installed(
    model: TextClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes `import` fail; the import is checked before any embedding.
    monkeypatch.setitem(sys.modules, embeddings.MODEL_PACKAGE, None)

    report = evaluate(model, SMALL_SET, threshold=0.45)

    assert set(report["baselines"]) == {"majority", "keywords"}
    assert report["baselines_not_installed"] == {"embeddings": "pip install '.[embeddings]'"}
    text = format_report("small", report)
    assert "embeddings baseline: not installed (pip install '.[embeddings]')" in text
    assert "baseline: keywords" in text


def test_learns_the_same_from_vectors_given(baseline: embeddings.EmbeddingClassifier) -> None:
    given = embeddings.fit(SMALL_SET, vectors=embeddings.embed_examples(SMALL_SET))

    assert given.classifier.coef_ == pytest.approx(baseline.classifier.coef_, abs=1e-6)
    with pytest.raises(ValueError, match="11 vectors for 12 examples"):
        embeddings.fit(SMALL_SET, vectors=embeddings.embed_examples(SMALL_SET[1:]))


def test_averages_with_a_pipeline_as_a_protocol_member(
    baseline: embeddings.EmbeddingClassifier,
) -> None:
    pipeline = fit(
        [Example(f"flight {i} late again", "delay", "en") for i in range(6)]
        + [Example(f"storm {i} on the coast", "weather", "en") for i in range(6)],
        TrainingParams(cv_folds=0),
    )
    averaged = TextClassifier(AveragedProbabilities([pipeline, baseline]), {"version": "both"})
    text = "RER B encore en retard de 40 minutes ce matin"

    [prediction] = averaged.predict([text])

    # `weather` only the pipeline knows; `schedule` only the embeddings model.
    assert {"weather", "schedule", "delay"} <= set(prediction.probabilities)
    alone = baseline.predict([text])[0].probabilities
    assert prediction.probabilities["schedule"] == pytest.approx(alone["schedule"] / 2, abs=1e-5)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_vectors_embed_each_distinct_text_once_and_keep_the_order(
    extra: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded: list[list[str]] = []
    real_embed = embeddings.embed

    def noted(texts: list[str]) -> Any:
        embedded.append(list(texts))
        return real_embed(texts)

    monkeypatch.setattr(embeddings, "embed", noted)
    vectors = embeddings.Vectors()
    first = [SMALL_SET[0], SMALL_SET[1], SMALL_SET[0], SMALL_SET[2]]
    again = [SMALL_SET[2], SMALL_SET[0], SMALL_SET[3], SMALL_SET[2], SMALL_SET[3]]

    assert vectors.of(first).shape == (4, embeddings.DIMENSIONS)
    matrix = vectors.of(again)

    assert [len(batch) for batch in embedded] == [3, 1]
    assert np.allclose(matrix, real_embed([normalise(e.text) for e in again]), atol=1e-5)
    assert vectors.of([]).shape == (0, embeddings.DIMENSIONS)
