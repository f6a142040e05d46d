"""Labelled examples from CSV or JSON-lines files, the hand-written seed corpus, and CLINC150."""

import csv
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SEED_DIR = Path(__file__).parent / "data" / "seed"

# CLINC150 intents (Larson et al., EMNLP 2019; CC BY 3.0) that are, word for word, a rider's
# request in our taxonomy. Everything else in CLINC150 is banking, cooking or small talk.
CLINC_LABELS = {
    "flight_status": "schedule",
    "lost_luggage": "problem",
    "book_flight": "problem",
    "oos": "other",
}


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    lang: str | None = None


@dataclass(frozen=True)
class Columns:
    """Which field of a file holds the text, the label and (optionally) the language."""

    text: str = "text"
    label: str = "label"
    lang: str | None = "lang"


def read_labelled(path: Path, columns: Columns = Columns()) -> list[Example]:
    """Examples from a `.csv` file or a JSON-lines file (`.jsonl`, `.json`, `.ndjson`)."""
    rows = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
    examples = []
    for number, row in enumerate(rows, start=1):
        text, label = row.get(columns.text), row.get(columns.label)
        if not isinstance(text, str) or not text.strip() or not isinstance(label, str) or not label:
            raise ValueError(
                f"{path}:{number}: needs a text in {columns.text!r} "
                f"and a label in {columns.label!r}"
            )
        lang = row.get(columns.lang) if columns.lang else None
        examples.append(
            Example(
                text=text,
                label=label.strip(),
                lang=lang if isinstance(lang, str) and lang else None,
            )
        )
    return examples


def _read_csv(path: Path) -> list[dict[str, object]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def seed_corpus(directory: Path = SEED_DIR) -> list[Example]:
    """Every hand-written seed example, files in name order so that training is reproducible."""
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no seed corpus (*.jsonl) in {directory}")
    return [example for path in files for example in read_labelled(path)]


def clinc150(path: Path, *, oos_limit: int = 400) -> list[Example]:
    """The CLINC150 queries whose intent maps onto the taxonomy (see CLINC_LABELS), in English."""
    splits = json.loads(path.read_text(encoding="utf-8"))
    examples: list[Example] = []
    oos = 0
    for split in ("train", "val", "test", "oos_train", "oos_val", "oos_test"):
        for text, intent in splits.get(split, []):
            label = CLINC_LABELS.get(intent)
            if label is None or (intent == "oos" and oos >= oos_limit):
                continue
            oos += intent == "oos"
            examples.append(Example(text=text, label=label, lang="en"))
    return examples


def fingerprint(examples: Iterable[Example]) -> str:
    """A SHA-256 over the examples in order: the same data gives the same fingerprint."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(f"{example.label}\t{example.lang or ''}\t{example.text}\n".encode())
    return digest.hexdigest()


def label_counts(examples: Sequence[Example]) -> dict[str, dict[str, int]]:
    """Counts per language, then per label."""
    counts: dict[str, dict[str, int]] = {}
    for example in examples:
        per_label = counts.setdefault(example.lang or "unknown", {})
        per_label[example.label] = per_label.get(example.label, 0) + 1
    return {lang: dict(sorted(labels.items())) for lang, labels in sorted(counts.items())}
