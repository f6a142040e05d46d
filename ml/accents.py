"""Accents stripped in C: the model's normalisation and routing's keyword folding share it."""

import unicodedata

# Rare characters are worked out each time past this many, so no text can grow the table without
# bound.
MAX_CHARACTERS = 65_536


class _WithoutMarks(dict[int, str]):
    """Each character's NFKD form less its combining marks, worked out on first sight, so that
    `str.translate` strips a whole text in C. Character by character gives what decomposing the
    whole text would, since every mark is dropped."""

    def __missing__(self, code: int) -> str:
        decomposed = unicodedata.normalize("NFKD", chr(code))
        stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
        if len(self) < MAX_CHARACTERS:
            self[code] = stripped
        return stripped


_WITHOUT_MARKS = _WithoutMarks()


def strip_accents(text: str) -> str:
    """The text decomposed (NFKD) without its combining marks: 'é' gives 'e', 'ﬁ' gives 'fi'."""
    return text if text.isascii() else text.translate(_WITHOUT_MARKS)
