"""Text normalisation and the feature extractor, shared by training and serving."""

import copy
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from ml.accents import strip_accents

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"@\w+")
_NUMBER = re.compile(r"\d+")
_REPEAT = re.compile(r"(.)\1\1+")  # what (.)\1{2,} matches; re runs this form faster
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, strip accents and replace handles, links and numbers by placeholders.

    Accents go because many riders type without them (and some sources strip them); handles and
    links go because they name the company, not the request.
    """
    text = strip_accents(text).lower()
    text = _URL.sub(" xurl ", text)
    text = _HANDLE.sub(" xhandle ", text)
    text = _NUMBER.sub(" 0 ", text)
    text = _REPEAT.sub(r"\1\1", text)
    return _SPACE.sub(" ", text).strip()


# Names the feature extractor in model versions: a change of features is a new model. Since
# "-v2" the character rows are normalised in numpy, which rounds differently in the last bits.
FEATURES = "words-1-2+char-hash-3-6-v2"


def build_features() -> "TextFeatures":
    """Word 1-2 grams and character 3-6 grams (across word boundaries), TF-IDF weighted.

    Character n-grams across boundaries catch short phrases and misspellings ("tjrs en retard");
    measured on the dev files they beat 2-5 grams within words, mostly in French.
    """
    words = TfidfVectorizer(
        analyzer="word",
        ngram_range=(1, 2),
        min_df=1,
        sublinear_tf=True,
        token_pattern=r"(?u)\b\w+\b",  # noqa: S106 - a regular expression, not a password
        dtype=np.float32,
    )
    return TextFeatures(words=words, chars=CharNgrams(ngram_range=(3, 6), min_df=2))


class TextFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """The word features, then the character features, side by side in one sparse matrix.

    What `FeatureUnion` gives, without its per-call machinery (a joblib dispatch, output
    wrappers, routing checks): that took half of a single text's prediction time.
    """

    def __init__(self, words: TfidfVectorizer, chars: "CharNgrams") -> None:
        self.words = words
        self.chars = chars

    def fit(self, texts: Sequence[str], y: object = None) -> "TextFeatures":
        self.fit_transform(texts)
        return self

    def fit_transform(self, texts: Sequence[str], y: object = None) -> csr_matrix:
        self.words_, self.chars_ = clone(self.words), clone(self.chars)
        return _side_by_side(self.words_.fit_transform(texts), self.chars_.fit_transform(texts))

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        return _side_by_side(word_tfidf(self.words_, texts), self.chars_.transform(texts))

    def __getstate__(self) -> dict[str, Any]:
        """The word vocabulary as one string, its terms in column order, one per line.

        skops writes a dictionary entry by entry as verbose JSON: 38,000 words made a 27 MB
        schema, whose parsing took 100 MB more at load than the loaded model holds (a worker
        peaked past 300 MB while starting)."""
        state: dict[str, Any] = super().__getstate__()
        fitted: Any = state.get("words_")
        vocabulary = getattr(fitted, "vocabulary_", None)
        if vocabulary is None or any("\n" in term for term in vocabulary):
            return state
        words = copy.copy(fitted)
        del words.vocabulary_
        terms = sorted(vocabulary, key=vocabulary.__getitem__)
        return {**state, "words_": words, WORD_TERMS: "\n".join(terms)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        terms = state.pop(WORD_TERMS, None)
        super().__setstate__(state)
        if terms is not None:
            self.words_.vocabulary_ = {term: i for i, term in enumerate(terms.split("\n"))}


# The attribute of a saved TextFeatures that holds its word vocabulary (see __getstate__).
WORD_TERMS = "word_terms_"


def _side_by_side(words: csr_matrix, chars: csr_matrix) -> csr_matrix:
    stacked: csr_matrix = hstack([words, chars], format="csr", dtype=np.float32)
    return stacked


def word_tfidf(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> csr_matrix:
    """What the fitted `vectorizer.transform(texts)` gives for a list of strings, bit for bit,
    in a fifth of the time for a single text and two thirds for a thousand: scikit-learn checks
    its input and its output at every step (two thirds of a single text's prediction time went
    there) and counts each text's n-grams in a dictionary. A vectorizer set up otherwise than
    ours (stop words, its own analyser, an integer dtype, ...) goes through scikit-learn. Unlike
    scikit-learn, an empty list gives an empty matrix."""
    if not _plain_words(vectorizer):
        matrix: csr_matrix = vectorizer.transform(texts)
        return matrix
    tokens_of = re.compile(vectorizer.token_pattern).findall
    lookup = vectorizer.vocabulary_.get
    low, high = vectorizer.ngram_range
    rows: list[int] = []
    columns: list[int] = []
    for row, text in enumerate(texts):
        tokens = tokens_of(text.lower())
        for n in range(low, high + 1):
            grams = tokens if n == 1 else _word_ngrams(tokens, n)
            found = [column for column in map(lookup, grams) if column is not None]
            columns += found
            rows += [row] * len(found)
    width = len(vectorizer.vocabulary_)
    # Sorted, distinct (row, column) pairs and their counts: a canonical CSR matrix.
    keys, counts = np.unique(
        np.array(rows, dtype=np.int64) * width + np.array(columns, dtype=np.int64),
        return_counts=True,
    )
    data = counts.astype(vectorizer.dtype)
    if vectorizer.sublinear_tf:
        np.log(data, data)
        data += 1.0
    indices = (keys % width).astype(np.int32)
    data *= vectorizer.idf_[indices]
    matrix = csr_matrix(
        (data, indices, _indptr(keys // width, len(texts))), shape=(len(texts), width)
    )
    inplace_csr_row_normalize_l2(matrix)  # what scikit-learn's `normalize` calls
    return matrix


def _word_ngrams(tokens: list[str], n: int) -> Iterator[str]:
    """Each run of n tokens, joined by a space, as scikit-learn joins them."""
    # The shifted copies are shorter: zip stops at the last full run.
    return map(" ".join, zip(*(tokens[i:] for i in range(n)), strict=False))


def _plain_words(vectorizer: TfidfVectorizer) -> bool:
    """Set up as `build_features` sets it (or differing only where `word_tfidf` follows)."""
    return bool(
        vectorizer.input == "content"
        and vectorizer.analyzer == "word"
        and vectorizer.lowercase
        and vectorizer.preprocessor is None
        and vectorizer.tokenizer is None
        and vectorizer.strip_accents is None
        and vectorizer.stop_words is None
        and not vectorizer.binary
        and vectorizer.use_idf
        and vectorizer.norm == "l2"
        and re.compile(vectorizer.token_pattern).groups <= 1
        and vectorizer.ngram_range[0] >= 1
        and vectorizer.dtype in (np.float32, np.float64)
    )


def _indptr(rows: np.ndarray, count: int) -> np.ndarray:
    """A CSR index pointer from the (sorted) row of each value (64-bit past 2**31 values, as
    scipy's own)."""
    indptr = np.zeros(count + 1, dtype=np.int32 if len(rows) < 2**31 else np.int64)
    np.cumsum(np.bincount(rows, minlength=count), out=indptr[1:])
    return indptr


# Odd 64-bit multipliers: the rolling-hash base, and Fibonacci hashing into the table.
_BASE = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)


class CharNgrams(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Character n-grams, TF-IDF weighted, computed with numpy instead of a Python loop.

    Each n-gram is hashed (a rolling polynomial over the code points, mixed with n) into
    `2**n_bits` buckets; `fit` keeps the buckets seen in at least `min_df` texts. The result is
    what scikit-learn's `TfidfVectorizer(analyzer="char", sublinear_tf=True)` gives, but for
    rare hash collisions, at a fraction of the time: its n-grams are sliced one by one in Python.
    """

    def __init__(
        self, ngram_range: tuple[int, int] = (3, 6), n_bits: int = 21, min_df: int = 2
    ) -> None:
        self.ngram_range = ngram_range
        self.n_bits = n_bits
        self.min_df = min_df

    def fit(self, texts: Sequence[str], y: object = None) -> "CharNgrams":
        rows, buckets = self._hashed(texts)
        pairs = np.unique(rows.astype(np.int64) << self.n_bits | buckets.astype(np.int64))
        document_frequency = np.bincount(
            pairs & ((1 << self.n_bits) - 1), minlength=1 << self.n_bits
        )
        kept = np.flatnonzero(document_frequency >= self.min_df)
        self.columns_ = np.full(1 << self.n_bits, -1, dtype=np.int32)
        self.columns_[kept] = np.arange(len(kept), dtype=np.int32)
        idf = np.log((1 + len(texts)) / (1 + document_frequency[kept])) + 1
        self.idf_ = idf.astype(np.float32)
        return self

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        rows, buckets = self._hashed(texts)
        columns = self.columns_[buckets]
        known = columns >= 0
        width = len(self.idf_)
        # Sorted, distinct (row, column) pairs and their counts: a canonical CSR matrix, without
        # scipy's building from coordinates, whose sorting of each row's columns cost more.
        keys, counts = np.unique(rows[known] * width + columns[known], return_counts=True)
        indices = (keys % width).astype(np.int32)
        indptr = _indptr(keys // width, len(texts))
        data = (1 + np.log(counts.astype(np.float32))) * self.idf_[indices]
        # Rows to unit length, as sklearn.preprocessing.normalize does, without its input checks:
        # they took a third of this method's time for a single text.
        row_of_value = np.repeat(np.arange(len(texts)), np.diff(indptr))
        norms = np.sqrt(np.bincount(row_of_value, data**2, minlength=len(texts)))
        data /= norms[row_of_value].astype(np.float32)
        return csr_matrix((data, indices, indptr), shape=(len(texts), width))

    def _hashed(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """For every n-gram of every text: the text's row and the n-gram's bucket."""
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        # One array of code points; each text is followed by a separator that no n-gram spans.
        codes = np.frombuffer("\0".join(texts).encode("utf-32-le"), dtype=np.uint32)
        codes = codes.astype(np.uint64)
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths + 1)[: len(codes)]
        ends = np.cumsum(lengths + 1)[:-1] - 1
        owner[ends] = -1
        all_rows, all_buckets = [], []
        low, high = self.ngram_range
        # The hash of each n-gram from that of the (n-1)-gram it starts with: one pass per n.
        hashed = np.zeros(len(codes), dtype=np.uint64)
        for n in range(1, high + 1):
            windows = len(codes) - n + 1
            if windows <= 0:
                break
            hashed = hashed[:windows] * _BASE + codes[n - 1 :]
            if n < low:
                continue
            inside = (owner[:windows] >= 0) & (owner[:windows] == owner[n - 1 :])
            mixed = (hashed[inside] ^ np.uint64(n)) * _MIX
            all_rows.append(owner[:windows][inside])
            all_buckets.append((mixed >> np.uint64(64 - self.n_bits)).astype(np.int64))
        if not all_rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(all_rows), np.concatenate(all_buckets)
