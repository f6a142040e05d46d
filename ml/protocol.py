"""Benchmark protocols for "trained on your own history".

- `airline`: train on the airline posts of `tweets.csv` with labels derived from the crowd's
  sentiment and negative reason (below), never on the annotated posts, and evaluate on those.
  With the `embeddings` extra, a sentence-embeddings member can join the averaged models; and
  the annotated posts can be learnt as agents' corrections by cross-fitting (no post predicted
  by a model that learnt it), as `aiguilleur train --average-seed --corrections` learns them.
- `binary`: complaint detection on any CSV with a text and a 0/1 (or named) column, as F1 of the
  positive class under 10-fold stratified cross-validation, seeds fixed.
"""

import argparse
import csv
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ml import embeddings as sentences
from ml.dataset import Example, read_labelled, seed_corpus
from ml.evaluate import evaluate, evaluate_predictions, format_report
from ml.features import normalise
from ml.folds import cross_fitted
from ml.model import Prediction, TextClassifier
from ml.params import TrainingParams, sample_weights
from ml.train import average, build_pipeline, fit

# What the crowd's annotations say honestly. Late and cancelled flights are delays; every other
# negative reason is a problem for customer service; positive posts are praise. Neutral posts and
# "Can't Tell" map to no label: they mix questions, chatter and requests, so they are left out.
AIRLINE_REASONS = {
    "Late Flight": "delay",
    "Cancelled Flight": "delay",
    "Lost Luggage": "problem",
    "Damaged Luggage": "problem",
    "Flight Booking Problems": "problem",
    "Customer Service Issue": "problem",
    "Bad Flight": "problem",
    "Flight Attendant Complaints": "problem",
    "longlines": "problem",
}


def derived_airline_label(sentiment: str, reason: str) -> str | None:
    if sentiment == "positive":
        return "praise"
    if sentiment == "negative":
        return AIRLINE_REASONS.get(reason)
    return None


def airline_history(tweets: Path, exclude_ids: set[str]) -> list[Example]:
    """The airline posts with a derivable label, minus the excluded (annotated) ones."""
    with tweets.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    examples = []
    for row in rows:
        label = derived_airline_label(row["airline_sentiment"], row["negativereason"])
        if label is not None and row["tweet_id"] not in exclude_ids:
            examples.append(Example(row["text"], label, "en"))
    return examples


SEED_MODES = ("none", "pooled", "averaged")


def airline(
    tweets: Path,
    annotated: Path,
    *,
    seed: str = "none",
    threshold: float = 0.45,
    embeddings: bool = False,
    cross_fit: int = 0,
) -> dict[str, Any]:
    """Train on the derived history (and the seed corpus), evaluate on the annotated posts.

    `seed`: "none", the history alone; "pooled", one model trained on the history and the seed
    corpus together; "averaged", a model of the history and a model of the seed corpus, their
    probabilities averaged with equal weights.
    `embeddings` (with "averaged"): a third member, a logistic regression over the seed
    corpus's sentence embeddings (the `embeddings` extra).
    `cross_fit` (with "averaged"): the annotated posts are learnt as agents' corrections (by
    the history model and the embeddings member, as `aiguilleur train --average-seed` learns
    them); the posts are split in this many folds, each predicted by models that learnt the
    others.
    """
    _check_modes(seed, embeddings, cross_fit)
    if embeddings:
        sentences.encoder()  # a missing extra is said before minutes of training, not after
    examples = read_labelled(annotated)
    history = airline_history(tweets, _annotated_ids(annotated))
    params = TrainingParams(cv_folds=0)
    if seed != "averaged":
        training = [*seed_corpus(), *history] if seed == "pooled" else history
        version = "in-domain" + ("+seed" if seed == "pooled" else "")
        classifier = TextClassifier(fit(training, params), {"version": version})
        report = evaluate(classifier, examples, threshold)
    else:
        seed_examples = seed_corpus()
        training = [*seed_examples, *history]
        seed_model = fit(seed_examples, params)
        vectors = sentences.Vectors() if embeddings else None
        name = "in-domain|seed" + ("|emb" if embeddings else "")

        def averaged(corrections: Sequence[Example]) -> TextClassifier:
            members = average(seed_examples, seed_model, history, corrections, params, vectors)
            return TextClassifier(members, {"version": name})

        if not cross_fit:
            report = evaluate(averaged([]), examples, threshold)
        else:
            labels = sorted({e.label for e in training})
            version = f"{name}+annotated, {cross_fit} folds"
            report = _cross_fitted(averaged, examples, cross_fit, labels, version, threshold)
    report["training_examples"] = dict(sorted(Counter(e.label for e in training).items()))
    return report


def _check_modes(seed: str, embeddings: bool, cross_fit: int) -> None:
    if seed not in SEED_MODES:
        raise ValueError(f"seed must be one of {SEED_MODES}, not {seed!r}")
    if embeddings and seed != "averaged":
        raise ValueError("the embeddings member joins the averaged models: it needs 'averaged'")
    if cross_fit and seed != "averaged":
        raise ValueError(
            "the annotated posts are cross-fitted as corrections of the averaged models: "
            "it needs 'averaged'"
        )
    if cross_fit == 1 or cross_fit < 0:
        raise ValueError(f"cross_fit is 0 (none) or at least 2 folds, not {cross_fit}")


def _annotated_ids(annotated: Path) -> set[str]:
    lines = annotated.read_text(encoding="utf-8").splitlines()
    return {str(json.loads(line)["source_id"]) for line in lines if line}


def _cross_fitted(
    averaged: Callable[[Sequence[Example]], TextClassifier],
    examples: list[Example],
    folds: int,
    labels: list[str],
    version: str,
    threshold: float,
) -> dict[str, Any]:
    """The annotated posts as the agents' corrections: each fold predicted by the averaged
    models that learnt the other folds as corrections, as `aiguilleur train --corrections` does."""

    def predict_fold(train: list[int], test: list[int]) -> list[Prediction]:
        classifier = averaged([examples[i] for i in train])
        return classifier.predict([examples[i].text for i in test])

    predictions = cross_fitted(examples, folds, predict_fold)
    report = evaluate_predictions(version, labels, examples, predictions, threshold)
    report["cross_fit_folds"] = folds
    return report


def binary(
    examples: Sequence[Example], positive: str, *, folds: int = 10, seed: int = 13
) -> dict[str, Any]:
    """F1 of the positive class under stratified k-fold cross-validation."""
    texts = [normalise(e.text) for e in examples]
    binary_examples = [
        Example(e.text, "complaint" if e.label == positive else "rest", e.lang) for e in examples
    ]
    labels = np.array([e.label for e in binary_examples])
    # The shipped pipeline; neither class is a service label, so the weights are just balanced.
    params = TrainingParams(seed=seed)
    weights = sample_weights(binary_examples, params.service_weight)
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(
        build_pipeline(params),
        texts,
        labels,
        cv=splits,
        params={"classifier__sample_weight": weights},
    )
    complaints = labels == "complaint"
    return {
        "examples": len(examples),
        "positives": int(complaints.sum()),
        "folds": folds,
        "f1_positive": round(float(f1_score(labels, predicted, pos_label="complaint")), 4),
        "positive_share": round(float(complaints.mean()), 4),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aiguilleur protocol",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tasks = p.add_subparsers(dest="task", required=True)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "airline_sentiment"
    air = tasks.add_parser(
        "airline", help="train on derived airline labels, test on the annotated posts"
    )
    air.add_argument("--tweets", type=Path, default=shared / "tweets.csv")
    air.add_argument("--annotated", type=Path, default=shared / "dev_annotated.jsonl")
    seed = air.add_mutually_exclusive_group()
    seed.add_argument(
        "--with-seed",
        action="store_const",
        const="pooled",
        dest="seed",
        help="train one model on the history and the seed corpus together",
    )
    seed.add_argument(
        "--average-seed",
        action="store_const",
        const="averaged",
        dest="seed",
        help="average a model of the history and a model of the seed corpus",
    )
    air.add_argument(
        "--embeddings",
        action="store_true",
        help="with --average-seed: a third member over the seed corpus's sentence embeddings "
        "(the embeddings extra)",
    )
    air.add_argument(
        "--cross-fit",
        type=int,
        default=0,
        metavar="FOLDS",
        help="with --average-seed: the annotated posts are learnt as corrections too, each "
        "fold predicted by models that learnt the others",
    )
    air.add_argument("--threshold", type=float, default=0.45)
    two = tasks.add_parser("binary", help="10-fold F1 of a 0/1 complaint column of any CSV")
    two.add_argument("file", type=Path)
    two.add_argument("--text-field", default="text")
    two.add_argument("--label-field", default="label")
    two.add_argument(
        "--positive", default="1", help="the value of the label column that is positive"
    )
    two.add_argument("--folds", type=int, default=10)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.task == "airline":
        try:
            report = airline(
                args.tweets,
                args.annotated,
                seed=args.seed or "none",
                threshold=args.threshold,
                embeddings=args.embeddings,
                cross_fit=args.cross_fit,
            )
        except (ValueError, sentences.EmbeddingsNotInstalled) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"trained on: {report['training_examples']}")
        if report.get("cross_fit_folds"):
            print(f"and the annotated posts, cross-fitted in {report['cross_fit_folds']} folds")
        print(format_report(str(args.annotated), report))
        return 0
    from ml.dataset import Columns

    examples = read_labelled(
        args.file, Columns(text=args.text_field, label=args.label_field, lang=None)
    )
    print(json.dumps(binary(examples, args.positive, folds=args.folds), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
