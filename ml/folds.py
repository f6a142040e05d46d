"""Cross-fitting: each example predicted by a model that never learnt it."""

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold

from ml.dataset import Example
from ml.model import Prediction


def cross_fitted(
    examples: Sequence[Example],
    folds: int,
    predict_fold: Callable[[list[int], list[int]], list[Prediction]],
    *,
    seed: int = 13,
) -> list[Prediction]:
    """One prediction per example, in order: `predict_fold(train, test)` predicts the examples
    at the `test` positions with a model that learnt from the `train` ones only.

    The folds are stratified by label (drawn with `seed`); a label with fewer examples than
    folds is counted with the most common label, so that every stratum can be split."""
    if folds < 2 or folds > len(examples):
        raise ValueError(f"{folds} folds for {len(examples)} examples")
    counts = Counter(e.label for e in examples)
    common = counts.most_common(1)[0][0]
    strata = [e.label if counts[e.label] >= folds else common for e in examples]
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predictions: dict[int, Prediction] = {}
    for train, test in splits.split(np.zeros(len(examples)), strata):
        made = predict_fold(train.tolist(), test.tolist())
        predictions.update(zip(test.tolist(), made, strict=True))
    return [predictions[i] for i in range(len(examples))]
