"""Baselines the model must beat: the majority label, and keyword triggers like a help desk's."""

import re
from collections import Counter
from collections.abc import Sequence

from ml.features import normalise
from ml.model import Prediction

# A help desk's triggers, French and English, checked in this order; the first label with a
# matching trigger wins, and a post with none is `other`. Words are matched on normalised text
# (lower case, no accents), at word starts, so "retard" also finds "retardé". The order puts
# the rarer, more specific teams first, and delays before problems because a cancellation
# usually comes with a complaint.
KEYWORD_TRIGGERS: dict[str, str] = {
    "press": (
        "journalist|reporter|press office|for comment|interview|newsroom|"
        "journaliste|redaction|service de presse|demande de commentaire"
    ),
    "investor": (
        "shares|stock|dividend|earnings|shareholder|investor|acquisition|merger|"
        "actions|actionnaire|bourse|dividende|resultats financiers|rachat|fusion"
    ),
    "employee": (
        "hiring|job|apply|internship|my manager|our union|colleagues|"
        "recrut|candidature|stage|alternance|syndicat|mes collegues|nos salaires"
    ),
    "delay": (
        "delay|late|cancel|stuck|waiting on the tarmac|missed my connection|"
        "retard|annul|supprim|bloque|perturb|interromp|trafic|ralenti"
    ),
    "schedule": (
        "what time|schedule|timetable|next train|first train|last train|departure|"
        "horaire|prochain|a quelle heure|premier train|dernier train|itineraire"
    ),
    "problem": (
        "lost|refund|bag|luggage|charged|booking|help|dm|nobody|on hold|broken|app|website|"
        "perdu|rembours|bagage|facture|coupure|panne|internet|aide|personne ne|commande|colis"
    ),
    "praise": "thank|thanks|great|love|awesome|amazing|merci|bravo|super|genial|top",
}

_COMPILED = [
    (label, re.compile(r"\b(?:" + "|".join(map(re.escape, words.split("|"))) + ")"))
    for label, words in KEYWORD_TRIGGERS.items()
]


def keyword_label(text: str) -> str:
    """The label of the first trigger list that matches the text, else `other`."""
    normalised = normalise(text)
    for label, pattern in _COMPILED:
        if pattern.search(normalised):
            return label
    return "other"


def keyword_predictions(texts: Sequence[str]) -> list[Prediction]:
    return [_certain(keyword_label(text)) for text in texts]


def majority_predictions(labels: Sequence[str]) -> list[Prediction]:
    """Always the most frequent of these labels: the file's own majority, the strongest guess."""
    majority = Counter(labels).most_common(1)[0][0]
    return [_certain(majority)] * len(labels)


def _certain(label: str) -> Prediction:
    return Prediction(label=label, probability=1.0, probabilities={label: 1.0})
