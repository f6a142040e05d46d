"""The feature extractors: the same features as scikit-learn's, much faster."""

import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from ml.dataset import seed_corpus
from ml.features import CharNgrams, TextFeatures, build_features, normalise
from ml.model import TRUSTED_TYPES


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return [normalise(e.text) for e in seed_corpus()]


def test_it_gives_the_features_scikit_learn_gives(texts: list[str]) -> None:
    ours = CharNgrams(ngram_range=(3, 6), min_df=2).fit(texts)
    reference = TfidfVectorizer(
        analyzer="char", ngram_range=(3, 6), min_df=2, sublinear_tf=True
    ).fit(texts)
    sample = texts[:200]

    a, b = ours.transform(sample), reference.transform(sample)

    # Same n-grams kept (up to a few hash collisions), and the same geometry between texts.
    assert abs(len(ours.idf_) - len(reference.vocabulary_)) / len(reference.vocabulary_) < 0.01
    assert np.abs((a @ a.T).toarray() - (b @ b.T).toarray()).max() < 0.02
    assert np.allclose(np.asarray(a.multiply(a).sum(axis=1)).ravel(), 1, atol=1e-5)


def test_n_grams_never_span_two_texts() -> None:
    features = CharNgrams(ngram_range=(3, 3), min_df=1).fit(["abc", "xyz"])

    both = features.transform(["abc", "xyz"])
    joined = features.transform(["abcxyz"])

    assert len(features.idf_) == 2  # "abc" and "xyz", never "bcx" or "cxy"
    assert both.getnnz() == 2
    assert joined.getnnz() == 2  # the two known n-grams; "bcx", "cxy" are unknown


def test_short_empty_and_unusual_texts() -> None:
    features = CharNgrams(ngram_range=(3, 4), min_df=1).fit(["train en retard 🚆", "ab"])

    matrix = features.transform(["", "ab", "🚆🚆🚆", "train en retard 🚆", "a\0bc"])

    assert matrix.shape == (5, len(features.idf_))
    assert matrix[0].getnnz() == 0
    assert matrix[1].getnnz() == 0
    assert matrix[3].getnnz() > 0


def test_it_is_deterministic(texts: list[str]) -> None:
    first = CharNgrams().fit(texts[:500]).transform(texts[:50])
    second = CharNgrams().fit(texts[:500]).transform(texts[:50])

    assert (first != second).nnz == 0


def test_the_text_features_are_what_a_feature_union_gives(texts: list[str]) -> None:
    ours = build_features().fit(texts[:1000])
    union = FeatureUnion([("words", ours.words), ("chars", ours.chars)]).fit(texts[:1000])
    sample = [*texts[1000:1200], "", "zzzz"]

    a, b = ours.transform(sample), union.transform(sample)

    assert a.shape == b.shape
    assert a.dtype == np.float32
    assert (a != b).nnz == 0


def saved_and_loaded(features: TextFeatures, path: Path) -> TextFeatures:
    sio.dump(features, path)
    loaded: TextFeatures = sio.load(path, trusted=TRUSTED_TYPES)
    return loaded


def test_the_word_vocabulary_is_saved_as_one_string_and_loads_the_same(
    texts: list[str], tmp_path: Path
) -> None:
    features = build_features().fit(texts)
    path = tmp_path / "features.skops"

    loaded = saved_and_loaded(features, path)

    assert loaded.words_.vocabulary_ == features.words_.vocabulary_
    assert (loaded.transform(texts) != features.transform(texts)).nnz == 0
    with zipfile.ZipFile(path) as archive:
        schema = archive.read("schema.json").decode()
    some_term = next(iter(features.words_.vocabulary_))
    assert '"vocabulary_"' not in schema
    assert len(schema) < 100 * len(features.words_.vocabulary_)
    assert some_term in schema


def test_features_saved_before_still_load(
    texts: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = build_features().fit(texts)
    monkeypatch.setattr(TextFeatures, "__getstate__", BaseEstimator.__getstate__)
    path = tmp_path / "old.skops"
    sio.dump(features, path)
    monkeypatch.undo()

    loaded = saved_and_loaded(features, path)

    assert loaded.words_.vocabulary_ == features.words_.vocabulary_
    assert (loaded.transform(texts) != features.transform(texts)).nnz == 0
