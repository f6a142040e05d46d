"""The feature extractors: the same features as scikit-learn's, much faster."""

import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from scipy.sparse import csr_matrix
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from ml.dataset import seed_corpus
from ml.features import CharNgrams, TextFeatures, build_features, normalise, word_tfidf
from ml.model import TRUSTED_TYPES, TextClassifier

# Texts that have tripped tokenisers: nothing, no word, one letter, case that grows when
# lowered, symbols, a word repeated (counts above one), a separator character.
ODD_TEXTS = [
    "",
    "   ",
    "a",
    "?? !!",
    "İstanbul ÉTÉ straße ǅ",
    "🚆🚆🚆 retard",
    "retard retard retard",
    "a\0b",
]


def same_matrix(a: csr_matrix, b: csr_matrix) -> bool:
    """The same values at the same places, in the same (canonical) layout, bit for bit."""
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


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


def reference_char_tfidf(features: CharNgrams, texts: list[str]) -> csr_matrix:
    """The character features built the plain way: scipy sums the n-grams' coordinates."""
    rows, buckets = features._hashed(texts)
    columns = features.columns_[buckets]
    known = columns >= 0
    counts = csr_matrix(
        (np.ones(int(known.sum()), dtype=np.float32), (rows[known], columns[known])),
        shape=(len(texts), len(features.idf_)),
    )
    counts.sum_duplicates()
    counts.data = (1 + np.log(counts.data)) * features.idf_[counts.indices]
    row_of_value = np.repeat(np.arange(len(texts)), np.diff(counts.indptr))
    norms = np.sqrt(np.bincount(row_of_value, counts.data**2, minlength=len(texts)))
    counts.data /= norms[row_of_value].astype(np.float32)
    return counts


def test_the_character_features_are_the_plainly_built_ones(texts: list[str]) -> None:
    features = CharNgrams().fit(texts)
    sample = [*texts[:300], *ODD_TEXTS]

    assert same_matrix(features.transform(sample), reference_char_tfidf(features, sample))
    assert same_matrix(features.transform(sample[:1]), reference_char_tfidf(features, sample[:1]))


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"ngram_range": (1, 3), "sublinear_tf": False, "dtype": np.float64},
        {"ngram_range": (2, 2), "smooth_idf": False},
        # Not followed, so they go through scikit-learn:
        {"stop_words": ["le", "the"]},
        {"dtype": np.int64},
        {"ngram_range": (0, 2)},
    ],
)
@pytest.mark.filterwarnings("ignore:Only .* 'dtype' should be used:UserWarning")
def test_word_features_are_scikit_learns_bit_for_bit(
    texts: list[str], settings: dict[str, object]
) -> None:
    base: dict[str, object] = {
        "ngram_range": (1, 2),
        "sublinear_tf": True,
        "token_pattern": r"(?u)\b\w+\b",
        "dtype": np.float32,
    }
    vectorizer = TfidfVectorizer(**{**base, **settings}).fit(texts[:2000])
    sample = [*texts[2000:], *ODD_TEXTS, "Mon TRAIN est EN RETARD"]

    for part in (sample, sample[:1], sample[-1:]):
        assert same_matrix(word_tfidf(vectorizer, part), vectorizer.transform(part))


def test_the_model_predicts_what_its_pipeline_predicts() -> None:
    model = TextClassifier.load(Path(__file__).parents[2] / "app" / "classify" / "model")
    raw = [e.text for e in seed_corpus()[:500]] + ODD_TEXTS

    expected = model._pipeline.predict_proba([normalise(text) for text in raw])
    predicted = model.predict(raw)

    assert [p.probabilities for p in predicted] == [
        {label: round(p, 6) for label, p in zip(model.labels, row, strict=True)}
        for row in expected.tolist()
    ]


def test_the_character_hash_is_the_one_saved_models_were_fitted_with() -> None:
    """A saved model maps buckets to columns: another hash would silently scramble them."""
    rows, buckets = CharNgrams()._hashed(["retard", "ok"])

    assert rows.tolist() == [0] * 10  # "ok" is shorter than three characters
    assert buckets.tolist() == [
        1915943, 1363, 756585, 1876508, 974386, 1972966, 605438, 227564, 53094, 749717
    ]  # fmt: skip


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Trèèès en retard!!!", "trees en retard!!"),  # runs of three or more become two
        ("aa bb", "aa bb"),  # a run of two stays
        ("noooooon", "noon"),
        ("@SNCF 3 trains: https://t.co/x\n\n  www.ex.fr", "xhandle 0 trains: xurl xurl"),
        ("", ""),
    ],
)
def test_normalisation(text: str, expected: str) -> None:
    assert normalise(text) == expected
