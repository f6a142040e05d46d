"""The sentence-embedding baseline: trained and used where its extra is installed, named where not."""

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from ml import embeddings, protocol
from ml.classifier import AveragedProbabilities
from ml.dataset import Example
from ml.evaluate import evaluate, format_report
from ml.model import Prediction, TextClassifier
from ml.train import TrainingParams, fit

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


def test_learns_the_same_from_vectors_given(baseline: embeddings.EmbeddingBaseline) -> None:
    given = embeddings.fit(SMALL_SET, vectors=embeddings.embed_examples(SMALL_SET))

    assert given.classifier.coef_ == pytest.approx(baseline.classifier.coef_, abs=1e-6)
    with pytest.raises(ValueError, match="11 vectors for 12 examples"):
        embeddings.fit(SMALL_SET, vectors=embeddings.embed_examples(SMALL_SET[1:]))


def test_averages_with_a_pipeline_as_a_protocol_member(
    baseline: embeddings.EmbeddingBaseline,
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


def test_the_airline_protocol_cross_fits_the_annotated_posts(
    extra: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "seed_corpus", lambda: SMALL_SET)
    tweets = tmp_path / "tweets.csv"
    rows = [
        f"{i},X,{sentiment},{reason},2015-02-24,{text} {i}"
        for i in range(8)
        for sentiment, reason, text in [
            ("negative", "Late Flight", "flight delayed by hours"),
            ("negative", "Lost Luggage", "you lost my bag"),
            ("positive", "", "great crew thanks"),
        ]
    ]
    tweets.write_text(
        "tweet_id,airline,airline_sentiment,negativereason,tweet_created,text\n" + "\n".join(rows)
    )
    posts = [
        ("my flight to Denver is two hours late", "delay"),
        ("where is my suitcase, it never came off the plane", "problem"),
        ("stuck on the tarmac for ninety minutes now", "delay"),
        ("my bag arrived torn open and soaked", "problem"),
        ("still waiting at the gate, no news of the 6pm", "delay"),
        ("nobody at the desk can find my luggage", "problem"),
    ]
    annotated = tmp_path / "annotated.jsonl"
    annotated.write_text(
        "".join(
            json.dumps({"source_id": f"a{i}", "text": text, "label": label, "lang": "en"}) + "\n"
            for i, (text, label) in enumerate(posts)
        )
    )
    learnt: list[set[str]] = []
    predicted: list[set[str]] = []
    real_fit, real_predict = embeddings.fit, TextClassifier.predict

    def fit_and_note(examples: list[Example], **options: Any) -> embeddings.EmbeddingBaseline:
        learnt.append({e.text for e in examples})
        return real_fit(examples, **options)

    def predict_and_note(self: TextClassifier, texts: list[str]) -> list[Prediction]:
        predicted.append(set(texts))
        return real_predict(self, texts)

    monkeypatch.setattr(embeddings, "fit", fit_and_note)
    monkeypatch.setattr(TextClassifier, "predict", predict_and_note)

    report = protocol.airline(tweets, annotated, seed="averaged", embeddings=True, cross_fit=3)

    assert report["cross_fit_folds"] == 3
    assert report["model_version"] == "in-domain|seed|emb+annotated, 3 folds"
    assert report["overall"]["examples"] == 6
    texts = {text for text, _ in posts}
    assert len(predicted) == 3
    assert set().union(*predicted) == texts
    for fold, learnt_texts in zip(predicted, learnt, strict=False):
        # Each fold's member learnt the seed corpus and the other folds' posts, never its own.
        assert learnt_texts & texts == texts - fold
        assert {e.text for e in SMALL_SET} <= learnt_texts
