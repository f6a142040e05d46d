"""Text conditions of routing rules: keywords and regular expressions that cannot stall us.

Regular expressions run on RE2, whose matching time is linear in the text: a pathological pattern
such as `(a+)+$` cannot hold a worker, so no time limit is needed.
"""

import re
from functools import lru_cache

import re2

from ml.accents import strip_accents

MAX_PATTERN_LENGTH = 500
# RE2 refuses a pattern whose compiled program would need more memory than this.
MAX_PATTERN_MEMORY = 1 << 20


def fold(text: str) -> str:
    """Lower case without accents: 'Retardé' and 'retarde' read the same."""
    return strip_accents(text.casefold())


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
