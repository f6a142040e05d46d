"""The triage policy and the language guess."""

import pytest

from app.classify.language import guess_language
from app.classify.service import Classifier
from ml.model import Prediction, TextClassifier


def prediction(**probabilities: float) -> Prediction:
    label = max(probabilities, key=lambda k: probabilities[k])
    return Prediction(label=label, probability=probabilities[label], probabilities=probabilities)


@pytest.mark.parametrize(
    ("threshold", "margin", "probabilities", "triage"),
    [
        (0.5, 0.0, {"delay": 0.6, "problem": 0.4}, False),
        (0.5, 0.0, {"delay": 0.49, "problem": 0.3, "other": 0.21}, True),
        (0.5, 0.3, {"delay": 0.6, "problem": 0.4}, True),
        (0.5, 0.1, {"delay": 0.6, "problem": 0.4}, False),
    ],
)
def test_triage_below_threshold_or_too_close_a_second(
    model: TextClassifier,
    threshold: float,
    margin: float,
    probabilities: dict[str, float],
    triage: bool,
) -> None:
    classifier = Classifier(model, threshold=threshold, margin=margin)

    assert classifier.needs_triage(prediction(**probabilities)) is triage


def test_classify_keeps_the_label_and_the_version(model: TextClassifier) -> None:
    [verdict] = Classifier(model, threshold=1.0, margin=0.0).classify(
        ["Mon train est annulé, encore !"]
    )

    assert verdict.triage is True
    assert verdict.label == max(verdict.probabilities, key=lambda k: verdict.probabilities[k])
    assert verdict.model_version == model.version
    assert sum(verdict.probabilities.values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Mon RER B est bloqué depuis 40 minutes à Châtelet, des infos ?", "fr"),
        ("Encore un train supprime ce matin, c'est pas possible", "fr"),
        ("My flight has been delayed again and nobody at the gate knows why", "en"),
        ("@TransNordRail 👍", None),
        ("Mi tren lleva 40 minutos de retraso, ¿qué pasa?", "other"),
        ("Mein Zug hat schon wieder 30 Minuten Verspätung", "other"),
        ("Il treno è in ritardo di nuovo, perché?", "other"),
        ("Мой поезд опаздывает на сорок минут", "other"),
        ("電車が遅れています", "other"),
        ("@NordRail la gare de Lyon est fermée ?", "fr"),
        ("@NordRail is the 8:12 running today?", "en"),
    ],
)
def test_guess_language(text: str, lang: str | None) -> None:
    assert guess_language(text) == lang
