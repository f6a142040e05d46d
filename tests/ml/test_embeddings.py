"""The sentence-embedding baseline: trained and used where its extra is installed, named where not."""

import socket
import sys

import pytest

from ml import embeddings
from ml.dataset import Example
from ml.evaluate import evaluate, format_report
from ml.model import TextClassifier

SMALL_SET = [
    Example("What time is the first train to Lyon tomorrow?", "schedule", "en"),
    Example("A quelle heure part le dernier train pour Lille ?", "schedule", "fr"),
    Example("My flight has been delayed three hours, again", "delay", "en"),
    Example("RER B encore en retard de 40 minutes ce matin", "delay", "fr"),
    Example("You lost my suitcase and nobody answers the phone", "problem", "en"),
    Example("Toujours pas de remboursement pour mon billet annulé", "problem", "fr"),
    Example("Thanks to the crew, lovely flight!", "praise", "en"),
    Example("Merci au contrôleur, super sympa", "praise", "fr"),
    Example("Journalist here, can your press office comment on the strike?", "press", "en"),
    Example("Shares up 5% after the quarterly earnings report", "investor", "en"),
    Example("Any openings for train drivers? I would like to apply", "employee", "en"),
    Example("lol what a meme", "other", "en"),
]


@pytest.fixture(scope="module")
def extra() -> None:
    """Skips a test where the `embeddings` extra is not installed (as in CI, which has `.[dev]`)."""
    pytest.importorskip(embeddings.MODEL_PACKAGE)
    pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def baseline(extra: None) -> embeddings.EmbeddingBaseline:
    return embeddings.fit(SMALL_SET)


@pytest.fixture
def small_seed_baseline(
    baseline: embeddings.EmbeddingBaseline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed baseline trained on SMALL_SET, so that evaluate() does not embed 3,000 posts."""
    monkeypatch.setattr(embeddings, "_seed_baseline", lambda: baseline)


def test_predicts_known_labels_with_a_distribution(baseline: embeddings.EmbeddingBaseline) -> None:
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


def test_learns_its_training_posts(baseline: embeddings.EmbeddingBaseline) -> None:
    predictions = baseline.predict([e.text for e in SMALL_SET])

    assert [p.label for p in predictions] == [e.label for e in SMALL_SET]


def test_training_and_prediction_are_deterministic(
    baseline: embeddings.EmbeddingBaseline,
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


@pytest.mark.usefixtures("small_seed_baseline")
def test_evaluate_adds_an_embeddings_row(model: TextClassifier) -> None:
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
