"""Reading labelled files and scoring predictions."""

from pathlib import Path

import pytest

from ml.baselines import keyword_label
from ml.dataset import Columns, Example, label_counts, read_labelled, seed_corpus
from ml.evaluate import evaluate, expected_calibration_error, score
from ml.model import Prediction, TextClassifier


def test_csv_and_jsonl_with_a_column_mapping(tmp_path: Path) -> None:
    csv = tmp_path / "posts.csv"
    csv.write_text('body,category\n"late again, 20 min",delay\nthanks!,praise\n')
    jsonl = tmp_path / "posts.jsonl"
    jsonl.write_text('{"body": "late again", "category": "delay", "lang": "en"}\n\n')

    columns = Columns(text="body", label="category")

    assert read_labelled(csv, columns) == [
        Example("late again, 20 min", "delay"),
        Example("thanks!", "praise"),
    ]
    assert read_labelled(jsonl, columns) == [Example("late again", "delay", "en")]


def test_a_row_without_text_or_label_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text('{"text": "ok", "label": "other"}\n{"text": "", "label": "other"}\n')

    with pytest.raises(ValueError, match=r"posts.jsonl:2"):
        read_labelled(path)


def test_the_seed_corpus_covers_every_label_in_both_languages() -> None:
    counts = label_counts(seed_corpus())

    assert set(counts) == {"en", "fr"}
    for lang in ("en", "fr"):
        assert set(counts[lang]) == {
            "schedule",
            "delay",
            "problem",
            "praise",
            "press",
            "investor",
            "employee",
            "other",
        }
        assert min(counts[lang].values()) >= 80


def predictions(labels: list[str], probability: float = 0.9) -> list[Prediction]:
    return [Prediction(label, probability, {label: probability}) for label in labels]


def test_score_of_perfect_predictions() -> None:
    gold = [Example("a", "delay"), Example("b", "praise"), Example("c", "problem")]

    report = score(gold, predictions(["delay", "praise", "problem"]), threshold=0.5)

    assert report["accuracy"] == report["macro_f1"] == report["service_request_f1"] == 1.0
    assert report["triage_rate"] == 0.0


def test_service_request_f1_counts_service_labels_as_one() -> None:
    gold = [
        Example("a", "delay"),
        Example("b", "problem"),
        Example("c", "praise"),
        Example("d", "other"),
    ]

    report = score(gold, predictions(["problem", "delay", "delay", "other"], 0.3), threshold=0.5)

    assert report["accuracy"] == 0.25
    assert report["service_request_f1"] == pytest.approx(0.8)
    assert report["triage_rate"] == 1.0
    assert report["per_label"]["other"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 1,
    }


def test_no_seed_text_carries_two_labels() -> None:
    labels: dict[str, set[str]] = {}
    for example in seed_corpus():
        labels.setdefault(example.text.strip().lower(), set()).add(example.label)

    assert {text: found for text, found in labels.items() if len(found) > 1} == {}


def test_baselines_are_scored_on_the_same_posts(model: TextClassifier) -> None:
    gold = [Example("a", "problem"), Example("b", "problem"), Example("merci beaucoup !", "praise")]

    report = evaluate(model, gold, threshold=0.5)

    assert report["baselines"]["majority"] == {
        "accuracy": 0.6667,
        "macro_f1": 0.4,
        "macro_f1_support_10": 0.0,
        "service_request_f1": 0.8,
    }
    assert report["baselines"]["keywords"]["accuracy"] == pytest.approx(0.3333)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("@TransNordRail Mon RER B est bloqué depuis 40 minutes", "delay"),
        ("Flight AB12 cancelled, now what?", "delay"),
        ("A quelle heure part le premier train ?", "schedule"),
        ("Journaliste au Parisien, une réaction sur la grève ?", "press"),
        ("When are Q3 earnings out?", "investor"),
        ("Vous recrutez des conducteurs ?", "employee"),
        ("my bag never arrived, lost for 3 days", "problem"),
        ("thanks for the smooth trip", "praise"),
        ("lol", "other"),
    ],
)
def test_keyword_triggers(text: str, label: str) -> None:
    assert keyword_label(text) == label


def test_expected_calibration_error() -> None:
    gold = [
        Example("a", "delay"),
        Example("b", "delay"),
        Example("c", "delay"),
        Example("d", "praise"),
    ]
    confident_and_right = predictions(["delay", "delay", "delay", "praise"], probability=1.0)
    half_sure_and_right = predictions(["delay", "delay", "delay", "praise"], probability=0.5)

    assert expected_calibration_error(gold, confident_and_right) == 0.0
    assert expected_calibration_error(gold, half_sure_and_right) == 0.5
