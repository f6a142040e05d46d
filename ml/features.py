"""Text normalisation and the feature extractor, shared by training and serving."""

import re
import unicodedata

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"@\w+")
_NUMBER = re.compile(r"\d+")
_REPEAT = re.compile(r"(.)\1{2,}")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, strip accents and replace handles, links and numbers by placeholders.

    Accents go because many riders type without them (and some sources strip them); handles and
    links go because they name the company, not the request.
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _URL.sub(" xurl ", text)
    text = _HANDLE.sub(" xhandle ", text)
    text = _NUMBER.sub(" 0 ", text)
    text = _REPEAT.sub(r"\1\1", text)
    return _SPACE.sub(" ", text).strip()


def build_features() -> FeatureUnion:
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
    chars = TfidfVectorizer(
        analyzer="char", ngram_range=(3, 6), min_df=2, sublinear_tf=True, dtype=np.float32
    )
    return FeatureUnion([("words", words), ("chars", chars)])
