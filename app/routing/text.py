"""Text conditions of routing rules: keywords and regular expressions that cannot stall us.

Regular expressions run on RE2, whose matching time is linear in the text: a pathological pattern
such as `(a+)+$` cannot hold a worker, so no time limit is needed.
"""

import re
import unicodedata
from functools import lru_cache

import re2

MAX_PATTERN_LENGTH = 500
# RE2 refuses a pattern whose compiled program would need more memory than this.
MAX_PATTERN_MEMORY = 1 << 20


def fold(text: str) -> str:
    """Lower case without accents: 'Retardé' and 'retarde' read the same."""
    folded = text.casefold()
    if folded.isascii():  # nothing to decompose: the common case, at a fraction of the cost
        return folded
    return folded.translate(_FOLDED)


class _FoldedCharacters(dict[int, str]):
    """Each character without its accents (its NFKD form less the combining marks), worked out
    the first time it is seen; `str.translate` then folds a text in C. Decomposing character by
    character gives what decomposing the whole text does, since the marks are all dropped."""

    def __missing__(self, code: int) -> str:
        decomposed = unicodedata.normalize("NFKD", chr(code))
        folded = "".join(char for char in decomposed if not unicodedata.combining(char))
        if len(self) < MAX_FOLDED_CHARACTERS:  # a text of rare characters cannot grow it unbounded
            self[code] = folded
        return folded


MAX_FOLDED_CHARACTERS = 65_536
_FOLDED = _FoldedCharacters()


@lru_cache(maxsize=1024)
def keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """Whole words or phrases, any of them; escaped literals, so nothing can backtrack."""
    alternatives = "|".join(re.escape(fold(keyword)) for keyword in keywords)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def matched_keyword(keywords: tuple[str, ...], folded_text: str) -> str | None:
    """The first of the keywords in a text already folded (see `fold`)."""
    found = keyword_pattern(keywords).search(folded_text)
    return found.group(0) if found else None


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = MAX_PATTERN_MEMORY
    return options


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> "re2._Regexp[str]":
    """The pattern compiled by RE2, case-insensitive; ValueError says why it cannot be."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"the regex is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _options())
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        raise ValueError(f"the regex {pattern!r} is not valid for RE2: {reason}") from error


def regex_matches(pattern: str, text: str) -> bool:
    return compile_regex(pattern).search(text) is not None
