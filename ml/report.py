"""Evaluation reports on disk: JSON for machines, Markdown for people, a PNG confusion matrix."""

import json
from pathlib import Path
from typing import Any


def write(name: str, report: dict[str, Any], directory: Path) -> list[Path]:
    """Write `<name>.json`, `<name>.md` and, with matplotlib installed, `<name>.confusion.png`."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / f"{name}.json", directory / f"{name}.md"]
    written[0].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written[1].write_text(markdown(name, report), encoding="utf-8")
    png = directory / f"{name}.confusion.png"
    if confusion_png(report["overall"]["confusion"], f"{name} ({report['model_version']})", png):
        written.append(png)
    return written


def markdown(name: str, report: dict[str, Any]) -> str:
    """The report as Markdown tables: summary with baselines, per label, per language."""
    overall = report["overall"]
    lines = [
        f"# {name}",
        "",
        f"Model `{report['model_version']}`, {overall['examples']} examples, "
        f"threshold {report['threshold']}: triage rate {overall['triage_rate']:.3f}, "
        f"accuracy of the rest {overall['accuracy_not_triaged']:.3f}, "
        f"expected calibration error {overall['expected_calibration_error']:.3f}.",
        "",
        "| | accuracy | macro-F1 | macro-F1 (support ≥ 10) | service-request F1 |",
        "|---|---|---|---|---|",
    ]
    rows = {"model": overall, **{f"baseline: {k}": v for k, v in report["baselines"].items()}}
    for label, row in rows.items():
        lines.append(
            f"| {label} | {row['accuracy']:.3f} | {row['macro_f1']:.3f} | "
            f"{row['macro_f1_support_10']:.3f} | {row['service_request_f1']:.3f} |"
        )
    lines += ["", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, row in overall["per_label"].items():
        lines.append(
            f"| {label} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | "
            f"{row['support']} |"
        )
    for lang, scores in report.get("per_language", {}).items():
        lines.append(
            f"\n{lang}: {scores['examples']} examples, accuracy {scores['accuracy']:.3f}, "
            f"macro-F1 (support ≥ 10) {scores['macro_f1_support_10']:.3f}, "
            f"service-request F1 {scores['service_request_f1']:.3f}"
        )
    if report["unknown_labels"]:
        lines.append(f"\nLabels the model does not know: {', '.join(report['unknown_labels'])}.")
    return "\n".join(lines) + "\n"


def confusion_png(confusion: dict[str, Any], title: str, path: Path) -> bool:
    """Draw the confusion matrix; False (nothing written) without the `reports` extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels, matrix = confusion["labels"], confusion["matrix"]
    figure, axes = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.7 * len(labels)))
    axes.imshow(matrix, cmap="Blues")
    axes.set(
        xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted", ylabel="gold"
    )
    axes.set_xticklabels(labels, rotation=45, ha="right")
    axes.set_yticklabels(labels)
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            colour = "white" if count > peak / 2 else "black"
            axes.text(j, i, str(count), ha="center", va="center", color=colour)
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
