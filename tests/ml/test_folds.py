"""Cross-fitting: every example predicted once, never by a model that learnt it."""

import pytest

from ml.dataset import Example
from ml.folds import cross_fitted
from ml.model import Prediction


def _labelled(counts: dict[str, int]) -> list[Example]:
    return [Example(f"{label} {i}", label) for label, n in counts.items() for i in range(n)]


@pytest.mark.parametrize("folds", [2, 5])
def test_cross_fitting_never_predicts_a_post_with_a_model_that_learnt_it(folds: int) -> None:
    # One `investor` post: fewer than the folds, so it is stratified with the commonest label.
    examples = _labelled({"problem": 12, "delay": 7, "other": 5, "investor": 1})
    seen: list[list[int]] = []

    def predict_fold(train: list[int], test: list[int]) -> list[Prediction]:
        assert not set(train) & set(test)
        assert set(train) | set(test) == set(range(len(examples)))
        seen.append(test)
        return [Prediction(f"fold {len(seen)}: {i}", 1.0, {}) for i in test]

    predictions = cross_fitted(examples, folds, predict_fold)

    assert len(seen) == folds
    assert sorted(i for test in seen for i in test) == list(range(len(examples)))
    # Each post's prediction is the one made for its own position, in the examples' order.
    assert [p.label.split(": ")[1] for p in predictions] == [str(i) for i in range(25)]
    # The folds are stratified: each fold of 5 holds at least one `other` post.
    if folds == 5:
        assert all(any(examples[i].label == "other" for i in test) for test in seen)


def test_cross_fitting_draws_the_same_folds_each_run() -> None:
    examples = _labelled({"problem": 10, "delay": 6})
    runs: list[list[list[int]]] = [[], []]
    for run in runs:

        def predict_fold(
            train: list[int], test: list[int], run: list[list[int]] = run
        ) -> list[Prediction]:
            run.append(test)
            return [Prediction("x", 1.0, {}) for _ in test]

        cross_fitted(examples, 3, predict_fold)

    assert runs[0] == runs[1]


def test_more_folds_than_examples_are_refused() -> None:
    with pytest.raises(ValueError, match="3 folds for 2 examples"):
        cross_fitted(_labelled({"delay": 2}), 3, lambda train, test: [])
