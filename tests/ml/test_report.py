"""Evaluation reports written to disk."""

import json
from pathlib import Path

from ml.dataset import Example
from ml.evaluate import confusion, evaluate
from ml.model import TextClassifier
from ml.report import write


def test_confusion_counts_gold_rows_and_predicted_columns() -> None:
    result = confusion(["delay", "delay", "praise"], ["delay", "problem", "praise"])

    assert result == {
        "labels": ["delay", "praise", "problem"],
        "matrix": [[1, 0, 1], [0, 1, 0], [0, 0, 0]],
    }


def test_reports_are_written_as_json_markdown_and_png(
    model: TextClassifier, tmp_path: Path
) -> None:
    examples = [
        Example("Mon train est supprimé, encore", "delay", "fr"),
        Example("thanks, lovely crew!", "praise", "en"),
    ]
    report = evaluate(model, examples, threshold=0.45)

    written = write("dev", report, tmp_path)

    assert [p.name for p in written] == ["dev.json", "dev.md", "dev.confusion.png"]
    assert json.loads(written[0].read_text())["overall"]["examples"] == 2
    markdown = written[1].read_text()
    assert "| model |" in markdown
    assert "| baseline: keywords |" in markdown
    assert "| delay |" in markdown
    assert "fr: 1 examples" in markdown
    assert written[2].read_bytes().startswith(b"\x89PNG")
