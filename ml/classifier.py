"""The classifiers: a logistic regression and a naive Bayes, their probabilities blended; and
models averaged, each trained on its own data."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import spmatrix
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB

from ml.model import ProbabilityModel, probabilities


class BlendedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A soft vote: `bayes_weight` of a multinomial naive Bayes, the rest a logistic regression.

    Both are fitted by scikit-learn on the same features and sample weights. Both predict a
    softmax of a linear function of the features (the regression's scores; the naive Bayes' joint
    log-likelihoods), so only those weights are kept, as (features x classes) matrices, and a
    prediction is two sparse products in numpy: scikit-learn's input checks cost more than that
    arithmetic for a single text.
    """

    def __init__(
        self,
        c: float = 8.0,
        bayes_weight: float = 0.2,
        bayes_alpha: float = 0.1,
        random_state: int = 13,
    ) -> None:
        self.c = c
        self.bayes_weight = bayes_weight
        self.bayes_alpha = bayes_alpha
        self.random_state = random_state

    def fit(
        self, features: Any, labels: Any, sample_weight: NDArray[np.float64] | None = None
    ) -> "BlendedClassifier":
        logistic = LogisticRegression(C=self.c, max_iter=5000, random_state=self.random_state)
        logistic.fit(features, labels, sample_weight=sample_weight)
        bayes = MultinomialNB(alpha=self.bayes_alpha)
        bayes.fit(features, labels, sample_weight=sample_weight)
        self.classes_ = logistic.classes_
        coef, intercept = logistic.coef_, logistic.intercept_
        if len(self.classes_) == 2:
            # A binary regression scores the second class only: softmax([0, z]) is its sigmoid.
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        self.logistic_weights_ = np.ascontiguousarray(coef.T, dtype=np.float32)
        self.logistic_bias_ = intercept.astype(np.float64)
        self.bayes_weights_ = np.ascontiguousarray(bayes.feature_log_prob_.T, dtype=np.float32)
        self.bayes_bias_ = bayes.class_log_prior_.astype(np.float64)
        self._set_both_weights()
        return self

    def predict_proba(self, features: spmatrix) -> NDArray[np.float64]:
        scores = features @ self._both_weights
        split = self.logistic_weights_.shape[1]
        logistic = _softmax(scores[:, :split] + self.logistic_bias_)
        bayes = _softmax(scores[:, split:] + self.bayes_bias_)
        blended: NDArray[np.float64] = (1 - self.bayes_weight) * logistic
        return blended + self.bayes_weight * bayes

    def _set_both_weights(self) -> None:
        """The two weight matrices side by side, made when the model is fitted or loaded: one
        sparse product reads each feature's weights of both models from one place, where two
        products read two places far apart in memory (and paid scipy's per-call checks twice).
        For sparse features, the same sums in the same order: the same probabilities, bit for
        bit. Not saved with the model."""
        self._both_weights = np.hstack([self.logistic_weights_, self.bayes_weights_])

    def __getstate__(self) -> dict[str, Any]:
        # A copy: on Python 3.11 the state scikit-learn gives is the instance's own dictionary.
        state: dict[str, Any] = dict(super().__getstate__())
        state.pop("_both_weights", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "logistic_weights_" in state:  # a fitted model
            self._set_both_weights()

    def predict(self, features: spmatrix) -> NDArray[Any]:
        classes: NDArray[Any] = self.classes_[np.argmax(self.predict_proba(features), axis=1)]
        return classes


def _softmax(scores: NDArray[np.float64]) -> NDArray[np.float64]:
    scores = np.asarray(scores, dtype=np.float64)
    exponentials = np.exp(scores - scores.max(axis=1, keepdims=True))
    normalised: NDArray[np.float64] = exponentials / exponentials.sum(axis=1, keepdims=True)
    return normalised


class AveragedProbabilities:
    """Two or more fitted models, their probabilities averaged over the union of their labels.

    A label that a member does not know gets probability 0 from it.
    """

    def __init__(self, members: Sequence[ProbabilityModel]) -> None:
        self.members = list(members)
        self.classes_ = np.array(sorted({str(c) for m in self.members for c in m.classes_}))

    def predict_proba(self, texts: Sequence[str]) -> NDArray[np.float64]:
        column = {label: i for i, label in enumerate(self.classes_)}
        total = np.zeros((len(texts), len(self.classes_)))
        for member in self.members:
            columns = [column[str(label)] for label in member.classes_]
            total[:, columns] += probabilities(member, texts)
        averaged: NDArray[np.float64] = total / len(self.members)
        return averaged
