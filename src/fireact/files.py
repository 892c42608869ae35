"""Reading user-supplied files (JSON, JSONL, CSV, YAML) with one-line errors that name the spot.

Every reader raises `FireactError` naming the file (and the line where there is one) for a
missing file, a directory, undecodable bytes or malformed content, so callers never leak a
traceback for bad input.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fireact.errors import FireactError


def read_text(path: Path) -> str:
    """The file's text (UTF-8); a clear error if it is missing, a folder or not UTF-8."""
    path = Path(path)
    if not path.exists():
        raise FireactError(f"{path}: file not found")
    if path.is_dir():
        raise FireactError(f"{path}: is a folder, expected a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise FireactError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise FireactError(f"{path}: cannot read ({err.strerror})") from None


def read_json(path: Path) -> Any:
    """Parse a JSON file; the error names the line and column of a syntax problem."""
    text = read_text(path)
    if not text.strip():
        raise FireactError(f"{path}: file is empty, expected JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise FireactError(
            f"{path}:{err.lineno}: malformed JSON ({err.msg}, column {err.colno})"
        ) from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, record)`` for each non-blank line of a JSONL file.

    A last line that is not JSON and has no line break was cut short by a kill while it was
    written: the error says so and points to ``--resume`` (which repairs a run's file).
    """
    return jsonl_records(path, read_text(path))


def jsonl_records(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """`iter_jsonl` over text already read from `path` (e.g. decompressed)."""
    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as err:
            if lineno == len(lines) and not text.endswith(("\n", "\r")):
                raise FireactError(
                    f"{path}:{lineno}: the last line is cut short (the run was killed while "
                    "writing it); rerun that run with --resume to finish it, which also repairs "
                    "the file"
                ) from None
            raise FireactError(f"{path}:{lineno}: malformed JSON line ({err.msg})") from None


def read_csv_rows(path: Path) -> list[list[str]]:
    """All rows of a CSV file (no header handling); a clear error for malformed quoting."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        return list(reader)
    except csv.Error as err:
        raise FireactError(f"{path}:{reader.line_num}: malformed CSV ({err})") from None


def read_yaml(path: Path, loader: Any = None) -> Any:
    """Parse a YAML file (with `loader`, a PyYAML loader class; default the safe one); the
    error names the line of a syntax problem."""
    import yaml

    text = read_text(path)
    try:
        return yaml.load(text, Loader=loader or yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise FireactError(
            f"{path}{line}: malformed YAML ({getattr(err, 'problem', err)})"
        ) from None
