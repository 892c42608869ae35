"""Reading FireAct's two SFT formats as they are: alpaca JSON and chat JSONL.

Owns `read_records` (each format as a JSON list or as JSONL; the fields of each record checked,
a bad one is one `FireactError` line naming the file and the line it starts on) and
`detect_format` (the format is told by the first record: ``messages`` → chat, else alpaca).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.files import iter_jsonl, read_json, read_text


def detect_format(path: Path, fmt: str = "auto") -> str:
    """``chat`` when the first record has ``messages``, else ``alpaca``."""
    if fmt != "auto":
        return fmt
    rows = _rows(path)
    return "chat" if rows and isinstance(rows[0], dict) and "messages" in rows[0] else "alpaca"


def read_records(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The records of a dataset file (a JSON list or JSONL), checked for their format's fields.

    A bad record (a missing field, a chat example with no messages or only blank ones) is one
    `FireactError` line naming the file and the line the record starts on.
    """
    rows = _rows(path)
    if not rows:
        raise FireactError(f"{path}: dataset is empty")
    for i, row in enumerate(rows):
        problem = _chat_problem(row) if fmt == "chat" else _alpaca_problem(row)
        if problem:
            raise FireactError(f"{path}:{_line_of_record(path, i)}: {problem}")
    return rows


def _rows(path: Path) -> list[Any]:
    """A JSON list, or the records of a JSONL file."""
    if read_text(path).lstrip()[:1] == "[":
        return read_json(path)
    return [row for _, row in iter_jsonl(path)]


def _line_of_record(path: Path, index: int) -> int:
    """The line on which record `index` (from 0) of a JSON list or JSONL file starts."""
    text = read_text(path)
    if text.lstrip()[:1] != "[":
        return [n for n, _ in iter_jsonl(path)][index]

    def skip(pos: int) -> int:  # whitespace and the commas between items
        while text[pos] in " \t\r\n,":
            pos += 1
        return pos

    decoder, pos = json.JSONDecoder(), text.index("[") + 1
    for _ in range(index):
        _, pos = decoder.raw_decode(text, skip(pos))
    return text.count("\n", 0, skip(pos)) + 1


def _alpaca_problem(row: Any) -> str | None:
    if not isinstance(row, dict) or not isinstance(row.get("output"), str):
        return "needs an 'output' string (alpaca format: instruction, input, output)"
    if not isinstance(row.get("instruction"), str):
        return "needs an 'instruction' string (alpaca format: instruction, input, output)"
    return None


def _chat_problem(row: Any) -> str | None:
    messages = row.get("messages") if isinstance(row, dict) else None
    if not isinstance(messages, list) or not all(_is_message(m) for m in messages):
        return "expected {'messages': [{'role': ..., 'content': ...}, ...]}"
    if not messages:
        return "empty chat example (no messages): remove the line or fill it in"
    if not any(m["content"].strip() for m in messages):
        return "empty chat example (every message is blank): remove the line or fill it in"
    return None


def _is_message(message: Any) -> bool:
    return (
        isinstance(message, dict) and isinstance(message.get("content"), str) and "role" in message
    )
