"""Mentions from a file: JSON lines (one MentionIn body per line) or CSV (the same fields as
columns; the author's as `author.handle`, `author.id`, ...; `raw` as a JSON document).

Every line is checked before anything is written; each refusal names its line.
"""

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from app.ingest.schemas import AuthorIn, MentionIn

Format = Literal["csv", "jsonl"]
SUFFIXES: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
COLUMNS = [name for name in MentionIn.model_fields if name != "author"] + [
    f"author.{name}" for name in AuthorIn.model_fields
]


@dataclass(frozen=True)
class Refusal:
    line: int
    reason: str


@dataclass(frozen=True)
class Read:
    """The mentions of a file, each with the line it starts on, and the lines refused."""

    mentions: list[MentionIn]
    lines: list[int]
    refused: list[Refusal]


def format_of(path: Path, given: Format | None) -> Format:
    if given is not None:
        return given
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{path.name}: say --format csv or jsonl (the suffix does not tell)")
    return SUFFIXES[path.suffix.lower()]


def read(path: Path, file_format: Format) -> Read:
    """Parse and validate every line of the file."""
    result = Read(mentions=[], lines=[], refused=[])
    rows = _json_lines(path) if file_format == "jsonl" else _csv_rows(path)
    for line, body in rows:
        if isinstance(body, Refusal):
            result.refused.append(body)
            continue
        try:
            mention = (
                MentionIn.model_validate_json(body)
                if isinstance(body, str)
                else MentionIn.model_validate(body)
            )
        except ValidationError as error:
            result.refused.append(Refusal(line, _reason(error)))
            continue
        result.mentions.append(mention)
        result.lines.append(line)
    return result


def _json_lines(path: Path) -> Iterator[tuple[int, str | Refusal]]:
    with path.open("rb") as lines:
        for number, raw_line in enumerate(lines, start=1):
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError:
                yield number, Refusal(number, "not UTF-8")
                continue
            if line.strip():
                yield number, line


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | Refusal]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, strict=True)
        unknown = sorted(set(reader.fieldnames or ()) - set(COLUMNS))
        if unknown or not reader.fieldnames:
            reason = f"unknown columns: {', '.join(unknown)}" if unknown else "no header"
            yield 1, Refusal(1, f"{reason} (the columns are {', '.join(COLUMNS)})")
            return
        line = reader.line_num + 1
        try:
            for row in reader:
                yield line, _csv_body(line, row)
                line = reader.line_num + 1
        except (csv.Error, UnicodeDecodeError) as error:
            yield line, Refusal(line, f"not readable as CSV: {error}")


def _csv_body(line: int, row: dict[str, str | None]) -> dict[str, Any] | Refusal:
    """A CSV row as a MentionIn body: empty cells are absent, `raw` holds JSON."""
    body: dict[str, Any] = {}
    for column, value in row.items():
        if column is None:
            return Refusal(line, "more cells than columns")
        if value is None or value == "":
            continue
        if column == "raw":
            try:
                body["raw"] = json.loads(value)
            except ValueError:
                return Refusal(line, "raw: not a JSON document")
        elif column.startswith("author."):
            body.setdefault("author", {})[column.removeprefix("author.")] = value
        else:
            body[column] = value
    return body


def _reason(error: ValidationError) -> str:
    problems = error.errors(include_input=False, include_url=False)
    return "; ".join(
        f"{'.'.join(str(part) for part in p['loc']) or 'line'}: {p['msg']}" for p in problems[:3]
    )
