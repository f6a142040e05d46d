"""Classification: the loaded model behind one narrow interface, and the triage decision."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ml.model import Prediction, TextClassifier


@dataclass(frozen=True)
class Verdict:
    """A prediction plus what the service decided from it."""

    label: str
    probability: float
    probabilities: dict[str, float]
    model_version: str
    triage: bool


class Classifier:
    """The model in use, with the triage policy: below the threshold (or too close a second
    label) the label is kept but the mention goes to a person instead of being guessed."""

    def __init__(self, model: TextClassifier, *, threshold: float, margin: float) -> None:
        self.model = model
        self.threshold = threshold
        self.margin = margin

    @classmethod
    def load(cls, path: Path, *, threshold: float, margin: float) -> "Classifier":
        return cls(TextClassifier.load(path), threshold=threshold, margin=margin)

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def classify(self, texts: Sequence[str]) -> list[Verdict]:
        """One vectorised model call for all the texts."""
        return [self._verdict(p) for p in self.model.predict(texts)]

    def _verdict(self, prediction: Prediction) -> Verdict:
        return Verdict(
            label=prediction.label,
            probability=prediction.probability,
            probabilities=prediction.probabilities,
            model_version=self.model.version,
            triage=self.needs_triage(prediction),
        )

    def needs_triage(self, prediction: Prediction) -> bool:
        if prediction.probability < self.threshold:
            return True
        ranked = sorted(prediction.probabilities.values(), reverse=True)
        return len(ranked) > 1 and ranked[0] - ranked[1] < self.margin
