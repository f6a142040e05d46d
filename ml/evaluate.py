"""Evaluate a model artifact on labelled files: per-label scores, service-request F1, triage."""

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sklearn.metrics import f1_score, precision_recall_fscore_support

from ml import SERVICE_LABELS
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
    }


def evaluate(
    classifier: TextClassifier, examples: Sequence[Example], threshold: float
) -> dict[str, Any]:
    """Scores overall and per language; labels the model does not know are counted, not dropped."""
    predictions = classifier.predict([e.text for e in examples])
    report: dict[str, Any] = {
        "model_version": classifier.version,
        "threshold": threshold,
        "unknown_labels": sorted({e.label for e in examples} - set(classifier.labels)),
        "overall": score(examples, predictions, threshold),
    }
    report["majority_baseline"] = majority_baseline(examples, threshold)
    languages = sorted({e.lang for e in examples if e.lang})
    if len(languages) > 1:
        report["per_language"] = {
            lang: score(*_subset(examples, predictions, lang), threshold) for lang in languages
        }
    return report


def majority_baseline(examples: Sequence[Example], threshold: float) -> dict[str, Any]:
    """The scores of always answering the file's most frequent label: what the model must beat.

    Service requests are most of real traffic, so this alone reaches a high service-request F1.
    """
    majority = Counter(e.label for e in examples).most_common(1)[0][0]
    always = [Prediction(majority, 1.0, {majority: 1.0})] * len(examples)
    scores = score(examples, always, threshold)
    return {
        "label": majority,
        **{k: scores[k] for k in ("accuracy", "macro_f1_support_10", "service_request_f1")},
    }


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
    baseline = report["majority_baseline"]
    lines.append(
        f"majority baseline (always {baseline['label']}): accuracy {baseline['accuracy']:.3f}  "
        f"macro-F1 (support>=10) {baseline['macro_f1_support_10']:.3f}  "
        f"service-request F1 {baseline['service_request_f1']:.3f}"
    )
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
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(reports, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
