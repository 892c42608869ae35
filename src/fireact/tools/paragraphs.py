"""Paragraph sources of the local index: HotpotQA JSON and title/text JSONL, read with one-line
errors (`read_paragraphs`).

Sources are HotpotQA JSON files (a list of records whose ``context`` is ``[[title,
[sentences]]]``) or JSONL files with one ``{"title": ..., "text": ...}`` object per line (or
``"sentences": [...]`` instead of ``text``; a ``text`` string is split by
`fireact.tools.text.split_sentences`). A file is read as JSONL when its name ends in ``.jsonl``
or its first non-blank character is ``{``; otherwise as one JSON list. Paragraphs with no
non-blank sentence are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fireact.errors import FireactError
from fireact.tools.text import split_sentences

HOTPOT_SHAPE = "expected a JSON list of HotpotQA records with 'context': [[title, [sentences]]]"
JSONL_SHAPE = 'expected one {"title": ..., "text": ...} object per line'


@dataclass(frozen=True)
class Paragraph:
    """One page of the corpus: its title and its sentences, exactly as given in the source."""

    title: str
    sentences: list[str]


def read_paragraphs(path: Path) -> Iterator[Paragraph]:
    """The non-empty paragraphs of one source file, in file order (FireactError if malformed)."""
    if not path.is_file():
        raise FireactError(f"{path}: no such file; give a HotpotQA JSON or a title/text JSONL file")
    try:
        with path.open(encoding="utf-8") as f:
            head = f.read(4096).lstrip()
        if path.suffix == ".jsonl" or head.startswith("{"):
            paragraphs = _read_jsonl(path)
        else:
            paragraphs = _read_hotpot(path) if head else iter(())
        for p in paragraphs:
            if any(s.strip() for s in p.sentences):
                yield p
    except UnicodeDecodeError as e:
        raise FireactError(f"{path}: not UTF-8 text ({e.reason}); save it as UTF-8") from None


def _read_hotpot(path: Path) -> Iterator[Paragraph]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        message = f"{path} line {e.lineno}: not valid JSON ({e.msg}); {HOTPOT_SHAPE}"
        raise FireactError(message) from None
    if not isinstance(data, list):
        raise FireactError(f"{path}: got a JSON {type(data).__name__}; {HOTPOT_SHAPE}")
    for i, record in enumerate(data):
        where = f"{path} record {i}"
        if not isinstance(record, dict) or "context" not in record:
            raise FireactError(f"{where}: missing 'context'; {HOTPOT_SHAPE}")
        context = record["context"]
        if not isinstance(context, list):
            raise FireactError(f"{where}: 'context' is not a list; {HOTPOT_SHAPE}")
        for item in context:
            ok = isinstance(item, list | tuple) and len(item) == 2
            if not ok or not isinstance(item[1], list):
                raise FireactError(f"{where}: a 'context' item is not [title, [sentences]]")
            yield _paragraph(item[0], item[1], where)


def _read_jsonl(path: Path) -> Iterator[Paragraph]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path} line {lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise FireactError(f"{where}: not valid JSON ({e.msg}); {JSONL_SHAPE}") from None
            if not isinstance(obj, dict) or "title" not in obj:
                raise FireactError(f"{where}: missing 'title'; {JSONL_SHAPE}")
            if "sentences" in obj:
                sentences = obj["sentences"]
            elif "text" in obj:
                text = obj["text"]  # a string, or (HotpotQA's wiki dump) a list of sentences
                sentences = split_sentences(text) if isinstance(text, str) else text
            else:
                raise FireactError(f"{where}: missing 'text' (or 'sentences'); {JSONL_SHAPE}")
            yield _paragraph(obj["title"], sentences, where)


def _paragraph(title: Any, sentences: Any, where: str) -> Paragraph:
    if not isinstance(title, str) or not title.strip():
        raise FireactError(f"{where}: the title must be a non-empty string, got {title!r:.60}")
    if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
        raise FireactError(f"{where}: the sentences of {title!r:.60} must be a list of strings")
    return Paragraph(title, sentences)
