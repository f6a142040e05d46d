"""What a training run is given: its settings, and how much each example weighs."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ml import SERVICE_LABELS
from ml.dataset import Example


@dataclass(frozen=True)
class TrainingParams:
    seed: int = 13
    c: float = 8.0
    # The labels are balanced within each language, then the service labels weigh this much more:
    # in real traffic most mentions are service requests, and missing one costs more than a
    # needless ticket.
    service_weight: float = 2.0
    # The naive Bayes' share of the blended probabilities, and its smoothing (see docs/model.md).
    bayes_weight: float = 0.2
    bayes_alpha: float = 0.1
    cv_folds: int = 5


def sample_weights(examples: Sequence[Example], service_weight: float) -> NDArray[np.float64]:
    """Labels balanced within each language; the service labels weigh service_weight times more.

    Each language keeps its share of the data and, within it, each of its labels weighs the same:
    an example weighs count(language) / (labels of the language * count(language, label)). With
    the labels balanced over all languages at once, the corpus' language mix would stay inside
    each label: the seed corpus has 319 French delays and 194 English ones, so an English delay
    would count for less, and the naive Bayes would learn what a delay looks like mostly from
    French posts. Examples without a language are one more language.
    """
    languages = Counter(example.lang or "" for example in examples)
    cells = Counter((example.lang or "", example.label) for example in examples)
    labels_per_language = Counter(lang for lang, _ in cells)
    return np.array(
        [
            languages[lang]
            / (labels_per_language[lang] * cells[lang, label])
            * (service_weight if label in SERVICE_LABELS else 1.0)
            for lang, label in ((example.lang or "", example.label) for example in examples)
        ]
    )
