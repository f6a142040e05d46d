"""The blended classifier predicts what its two scikit-learn models predict, mixed."""

import io
import zipfile

import numpy as np
import pytest
import skops.io as sio
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB

from ml.classifier import BlendedClassifier, _softmax


def counts(rows: int, classes: int, seed: int) -> tuple[csr_matrix, np.ndarray]:
    """Sparse non-negative features whose distribution depends on the class."""
    generator = np.random.default_rng(seed)
    labels = np.array([f"label-{i % classes}" for i in range(rows)])
    dense = generator.random((rows, 40)) * (generator.random((rows, 40)) < 0.2)
    for i in range(rows):
        dense[i, i % classes] += 1.0  # one telling feature per class
    return csr_matrix(dense.astype(np.float32)), labels


@pytest.mark.parametrize("classes", [2, 5])
def test_it_mixes_the_two_models_probabilities(classes: int) -> None:
    features, labels = counts(120, classes, seed=classes)
    weights = np.linspace(0.5, 2.0, len(labels))
    blended = BlendedClassifier(c=4.0, bayes_weight=0.3, bayes_alpha=0.2).fit(
        features, labels, sample_weight=weights
    )
    logistic = LogisticRegression(C=4.0, max_iter=5000, random_state=13)
    bayes = MultinomialNB(alpha=0.2)
    logistic.fit(features, labels, sample_weight=weights)
    bayes.fit(features, labels, sample_weight=weights)

    expected = 0.7 * logistic.predict_proba(features) + 0.3 * bayes.predict_proba(features)
    probabilities = blended.predict_proba(features)

    assert list(blended.classes_) == list(logistic.classes_)
    assert np.allclose(probabilities, expected, atol=1e-5)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert list(blended.predict(features)) == list(blended.classes_[np.argmax(expected, axis=1)])


def test_the_weights_are_stored_for_fast_sparse_products() -> None:
    features, labels = counts(60, 3, seed=1)
    blended = BlendedClassifier().fit(features, labels)

    for matrix in (blended.logistic_weights_, blended.bayes_weights_):
        assert matrix.shape == (40, 3)
        assert matrix.dtype == np.float32
        assert matrix.flags["C_CONTIGUOUS"]


def test_one_product_gives_what_the_two_products_gave_bit_for_bit() -> None:
    features, labels = counts(80, 4, seed=2)
    blended = BlendedClassifier(bayes_weight=0.25).fit(features, labels)

    logistic = _softmax(features @ blended.logistic_weights_ + blended.logistic_bias_)
    bayes = _softmax(features @ blended.bayes_weights_ + blended.bayes_bias_)

    assert np.array_equal(blended.predict_proba(features), 0.75 * logistic + 0.25 * bayes)


def test_the_side_by_side_weights_follow_a_new_fit_and_are_not_saved() -> None:
    features, labels = counts(60, 3, seed=3)
    blended = BlendedClassifier().fit(features, labels)
    first = blended.predict_proba(features)

    saved = sio.dumps(blended)
    with zipfile.ZipFile(io.BytesIO(saved)) as archive:
        assert "_both_weights" not in archive.read("schema.json").decode()
    loaded = sio.loads(saved, trusted=sio.get_untrusted_types(data=saved))
    assert np.array_equal(loaded.predict_proba(features), first)  # made again at load
    assert "_both_weights" in blended.__dict__  # saving left the instance as it was

    refitted = blended.fit(features[:, ::-1].tocsr(), labels)  # other weights, same instance
    assert not np.allclose(refitted.predict_proba(features), first)
    assert np.array_equal(
        refitted.predict_proba(features),
        BlendedClassifier().fit(features[:, ::-1].tocsr(), labels).predict_proba(features),
    )
