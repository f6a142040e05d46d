"""normalise strips accents character by character: the same text as decomposing it whole."""

import unicodedata

import pytest

from ml.features import normalise


def reference(text: str) -> str:
    """The whole text decomposed and its marks dropped, then normalise's other steps (a text
    already without marks goes through the accent step unchanged)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return normalise("".join(c for c in decomposed if not unicodedata.combining(c)))


@pytest.mark.parametrize(
    "text",
    [
        "Mon RER B est bloqué à Châtelet depuis 40 min !!!",
        "RETARDÉ, ÇA SUFFIT @TransNordRail https://t.co/x",
        "Straße ﬁn Ǆ İ ΐ ǰ Ｔｒａｉｎ K\u212a ①",
        "e\u0301\u0327 a\u0308\u0300",
        "Поезд опаздывает 東京 🚆",
    ],
)
def test_accents_go_as_if_the_text_were_decomposed_whole(text: str) -> None:
    assert normalise(text) == reference(text)


def test_every_latin_and_greek_character_loses_its_accents_alike() -> None:
    every = " ".join(chr(code) for code in range(0x80, 0x3FF))
    assert normalise(every) == reference(every)
    assert normalise("Retardé") == "retarde"
