"""The language of a mention: 'fr', 'en', 'other', or None when the text gives no evidence."""

import re
import unicodedata
from collections import Counter
from functools import lru_cache

# Common words of each language. French and English are the ones routing distinguishes; the
# others are here so that a Spanish or German post is recognised as neither, not guessed.
_COMMON_WORDS = {
    "fr": """le la les un une des du de et est à au aux en dans pour pas sur avec je vous nous il
        elle ce cette mon ma mes votre vos depuis encore toujours gare retard merci bonjour svp
        quand quoi rien très trop c'est j'ai n'est qu'il aucun aucune""",
    "en": """the a an and is are was to of in on for not with i you we it this my your our since
        still again flight delay thanks hello please when what nothing very too it's i'm don't
        can't no any""",
    "es": """el los las una que y por para con está pero muy gracias hola mi tren vuelo retraso
        hay cuando qué lleva minutos ningún nadie también""",
    "de": """der die das und ist nicht ein eine ich sie wir mit auf für zu von den dem bitte danke
        zug verspätung schon wieder mein meine heute warum""",
    "it": """il lo gli di che è non per sono ho treno ritardo grazie ciao mio ancora perché oggi""",
    "pt": """o os um uma que não para com é está muito obrigado olá trem voo atraso meu minha""",
    "nl": """het een en is niet ik je we met op voor van dank trein vertraging mijn weer""",
}
_WORDS = {lang: frozenset(words.split()) for lang, words in _COMMON_WORDS.items()}
_LETTERS = {"fr": "éèêàçùôîœ", "es": "ñ¿¡", "de": "ßäöü", "pt": "ãõ"}
_LANGUAGE_OF_LETTER = {char: lang for lang, letters in _LETTERS.items() for char in letters}
_TOKEN = re.compile(r"[\w']+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Each common word and the languages it belongs to, so that a text's words are looked up once.
_LANGUAGES_OF = {
    word: tuple(lang for lang, words in _WORDS.items() if word in words)
    for word in frozenset().union(*_WORDS.values())
}


def guess_language(text: str) -> str | None:
    """The best-supported language; another language than French or English is 'other'."""
    lowered = text.lower()
    accented = _NON_ASCII.findall(lowered)
    if accented and _mostly_non_latin(lowered, accented):
        return "other"
    scores = Counter(dict.fromkeys(_WORDS, 0))
    scores.update(lang for word in _TOKEN.findall(lowered) for lang in _LANGUAGES_OF.get(word, ()))
    for char in accented:
        if char in _LANGUAGE_OF_LETTER:
            scores[_LANGUAGE_OF_LETTER[char]] += 2
    best = max(scores.values())
    leaders = [lang for lang, score in scores.items() if score == best]
    if best == 0 or len(leaders) > 1:
        return None
    return leaders[0] if leaders[0] in ("fr", "en") else "other"


def _mostly_non_latin(text: str, accented: list[str]) -> bool:
    """More than half of the letters are not Latin; only the non-ASCII characters can be not."""
    non_latin = sum(1 for char in accented if char.isalpha() and not _is_latin(char))
    if not non_latin:
        return False
    letters = sum(1 for char in text if char.isalpha())
    return letters >= 3 and letters - non_latin < letters / 2


@lru_cache(maxsize=4096)
def _is_latin(char: str) -> bool:
    return char.isascii() or "LATIN" in unicodedata.name(char, "")
