"""The language of a mention: 'fr', 'en', 'other', or None when the text gives no evidence."""

import re
import unicodedata

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
_TOKEN = re.compile(r"[\w']+")


def guess_language(text: str) -> str | None:
    """The best-supported language; another language than French or English is 'other'."""
    lowered = text.lower()
    if _mostly_non_latin(lowered):
        return "other"
    words = [word for word in _TOKEN.findall(lowered) if not word.isdigit()]
    scores = {
        lang: sum(word in common for word in words)
        + 2 * sum(lowered.count(c) for c in _LETTERS.get(lang, ""))
        for lang, common in _WORDS.items()
    }
    best = max(scores.values())
    leaders = [lang for lang, score in scores.items() if score == best]
    if best == 0 or len(leaders) > 1:
        return None
    return leaders[0] if leaders[0] in ("fr", "en") else "other"


def _mostly_non_latin(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    latin = sum("LATIN" in unicodedata.name(c, "") for c in letters)
    return len(letters) >= 3 and latin < len(letters) / 2
