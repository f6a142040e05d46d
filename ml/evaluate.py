"""Evaluate a model artifact on labelled files: per-label scores, service-request F1, triage."""

import argparse
import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

from ml import SERVICE_LABELS, embeddings
from ml import report as report_files
from ml.baselines import keyword_predictions, majority_predictions
from ml.dataset import Columns, Example, read_labelled
from ml.model import Prediction, TextClassifier


def score(
    examples: Sequence[Example], predictions: Sequence[Prediction], threshold: float
) -> dict[str, Any]:
    """Scores of predictions against gold labels (macro-F1 over labels present in the gold data)."""
    gold = [e.label for e in examples]
    predicted = [p.label for p in predictions]
    present = sorted(set(gold))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=present, zero_division=0
    )
    per_label = {
        label: {
            "precision": round(float(p), 4),
            "recall": round(float(r), 4),
            "f1": round(float(f), 4),
            "support": int(s),
        }
        for label, p, r, f, s in zip(present, precision, recall, f1, support, strict=True)
    }
    frequent = [label for label in present if per_label[label]["support"] >= 10]
    confident = [i for i, p in enumerate(predictions) if p.probability >= threshold]
    return {
        "examples": len(gold),
        "accuracy": round(
            sum(g == p for g, p in zip(gold, predicted, strict=True)) / max(len(gold), 1), 4
        ),
        "macro_f1": round(
            sum(per_label[label]["f1"] for label in present) / max(len(present), 1), 4
        ),
        "macro_f1_support_10": round(
            sum(per_label[label]["f1"] for label in frequent) / max(len(frequent), 1), 4
        ),
        "service_request_f1": round(
            float(
                f1_score(
                    [g in SERVICE_LABELS for g in gold],
                    [p in SERVICE_LABELS for p in predicted],
                    zero_division=0,
                )
            ),
            4,
        ),
        "triage_rate": round(1 - len(confident) / max(len(gold), 1), 4),
        "accuracy_not_triaged": round(
            sum(gold[i] == predicted[i] for i in confident) / max(len(confident), 1), 4
        ),
        "per_label": per_label,
        "confusion": confusion(gold, predicted),
    }


def confusion(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Counts of (gold, predicted) pairs: rows are gold labels, columns predictions."""
    labels = sorted(set(gold) | set(predicted))
    # Counted here: scikit-learn's confusion_matrix warns on a subset with a single label (one
    # language's few examples), which is a fine subset to report.
    row = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, predicted, strict=True):
        matrix[row[g]][row[p]] += 1
    return {"labels": labels, "matrix": matrix}


def evaluate(
    classifier: TextClassifier, examples: Sequence[Example], threshold: float
) -> dict[str, Any]:
    """Scores overall and per language; labels the model does not know are counted, not dropped."""
    predictions = classifier.predict([e.text for e in examples])
    return evaluate_predictions(
        classifier.version, classifier.labels, examples, predictions, threshold
    )


def evaluate_predictions(
    version: str,
    labels: Sequence[str],
    examples: Sequence[Example],
    predictions: Sequence[Prediction],
    threshold: float,
) -> dict[str, Any]:
    """`evaluate`'s report for predictions made already, by a model of these labels: one per
    example, in order (a protocol's cross-fitted predictions come from several models)."""
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    report: dict[str, Any] = {
        "model_version": version,
        "threshold": threshold,
        "unknown_labels": sorted({e.label for e in examples} - set(labels)),
        "overall": score(examples, predictions, threshold),
    }
    report["overall"]["expected_calibration_error"] = expected_calibration_error(
        examples, predictions
    )
    report["baselines"] = baselines(examples, threshold)
    report["baselines_not_installed"] = {
        name: hint for name, hint in OPTIONAL_BASELINES.items() if name not in report["baselines"]
    }
    languages = sorted({e.lang for e in examples if e.lang})
    if len(languages) > 1:
        report["per_language"] = {
            lang: score(*_subset(examples, predictions, lang), threshold) for lang in languages
        }
    return report


# Baselines that need an optional extra, and how to install it.
OPTIONAL_BASELINES = {"embeddings": embeddings.INSTALL_HINT}


def baselines(examples: Sequence[Example], threshold: float) -> dict[str, dict[str, Any]]:
    """The scores of the baselines on the same examples: what the model must beat.

    The embeddings baseline is left out where its extra is not installed.
    """
    texts, gold = [e.text for e in examples], [e.label for e in examples]
    runs = {"majority": majority_predictions(gold), "keywords": keyword_predictions(texts)}
    with contextlib.suppress(embeddings.EmbeddingsNotInstalled):
        runs["embeddings"] = embeddings.seed_predictions(texts)
    return {
        name: _summary(score(examples, predicted, threshold)) for name, predicted in runs.items()
    }


def _summary(scores: dict[str, Any]) -> dict[str, Any]:
    return {key: scores[key] for key in SUMMARY}


SUMMARY = ("accuracy", "macro_f1", "macro_f1_support_10", "service_request_f1")


def expected_calibration_error(
    examples: Sequence[Example], predictions: Sequence[Prediction], bins: int = 10
) -> float:
    """How far the top probability is from the share of correct labels, averaged over bins."""
    total, error = len(examples), 0.0
    for low in np.linspace(0, 1, bins, endpoint=False):
        members = [
            (e, p)
            for e, p in zip(examples, predictions, strict=True)
            if low < p.probability <= low + 1 / bins or (low == 0 and p.probability == 0)
        ]
        if members:
            confidence = sum(p.probability for _, p in members) / len(members)
            accuracy = sum(e.label == p.label for e, p in members) / len(members)
            error += len(members) / total * abs(confidence - accuracy)
    return round(error, 4)


def _subset(
    examples: Sequence[Example], predictions: Sequence[Prediction], lang: str
) -> tuple[list[Example], list[Prediction]]:
    pairs = [(e, p) for e, p in zip(examples, predictions, strict=True) if e.lang == lang]
    return [e for e, _ in pairs], [p for _, p in pairs]


def format_report(name: str, report: dict[str, Any]) -> str:
    """A plain-text table of one report."""
    overall = report["overall"]
    lines = [
        f"== {name}: {overall['examples']} examples, model {report['model_version']}",
        f"accuracy {overall['accuracy']:.3f}  macro-F1 {overall['macro_f1']:.3f}  "
        f"macro-F1 (support>=10) {overall['macro_f1_support_10']:.3f}  "
        f"service-request F1 {overall['service_request_f1']:.3f}",
        f"triage rate {overall['triage_rate']:.3f} at threshold {report['threshold']}, "
        f"accuracy of the rest {overall['accuracy_not_triaged']:.3f}",
        f"{'label':<10} {'prec':>6} {'recall':>6} {'f1':>6} {'support':>7}",
    ]
    for label, row in overall["per_label"].items():
        lines.append(
            f"{label:<10} {row['precision']:>6.3f} {row['recall']:>6.3f} "
            f"{row['f1']:>6.3f} {row['support']:>7}"
        )
    lines.append(
        f"calibration: expected calibration error {overall['expected_calibration_error']:.3f}"
    )
    lines.append(
        f"{'compared on the same posts':<28} {'accuracy':>8} {'macro-F1':>8} "
        f"{'m-F1>=10':>8} {'svc F1':>7}"
    )
    rows = {
        "model": overall,
        **{f"baseline: {name}": row for name, row in report["baselines"].items()},
    }
    for name, row in rows.items():
        lines.append(
            f"{name:<28} {row['accuracy']:>8.3f} {row['macro_f1']:>8.3f} "
            f"{row['macro_f1_support_10']:>8.3f} {row['service_request_f1']:>7.3f}"
        )
    for name, hint in report.get("baselines_not_installed", {}).items():
        lines.append(f"{name} baseline: not installed ({hint})")
    if report["unknown_labels"]:
        lines.append(f"labels the model does not know: {', '.join(report['unknown_labels'])}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aiguilleur evaluate", description=__doc__)
    p.add_argument("files", type=Path, nargs="+", help="labelled CSV or JSON-lines files")
    p.add_argument(
        "--model", type=Path, required=True, help="directory with model.skops and metadata.json"
    )
    p.add_argument("--text-field", default="text")
    p.add_argument("--label-field", default="label")
    p.add_argument(
        "--lang", default=None, help="language of every row, when the file has no lang field"
    )
    p.add_argument("--threshold", type=float, default=0.45)
    p.add_argument("--json", type=Path, default=None, help="also write the reports as JSON here")
    p.add_argument(
        "--out", type=Path, default=None, help="write <dir>-<file>.json, .md, .confusion.png here"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    classifier = TextClassifier.load(args.model)
    reports = {}
    for path in args.files:
        examples = read_labelled(path, Columns(text=args.text_field, label=args.label_field))
        if args.lang:
            examples = [Example(e.text, e.label, e.lang or args.lang) for e in examples]
        reports[str(path)] = evaluate(classifier, examples, args.threshold)
        print(format_report(str(path), reports[str(path)]), end="\n\n")
    if args.out:
        for path, report in zip(args.files, reports.values(), strict=True):
            name = f"{path.parent.name}-{path.stem}"  # dev files often share a file name
            for written in report_files.write(name, report, args.out):
                print(f"wrote {written}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(reports, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
