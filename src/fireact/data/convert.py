"""Turning agent runs into fine-tuning data (SPEC §4).

Owns `convert`: run folders / episode JSONL files (or FireAct trajectory JSON, read by
`fireact.data.fireact_import`) → FireAct's alpaca JSON or OpenAI chat JSONL, with the filters
(success only, methods, dedupe, seeded shuffle) and the counts. Each kept episode is put in
FireAct's shape for its method by `fireact.data.shapes` (the rules per method are there); the
record fields are read by `fireact.data.records`.

Files, byte for byte FireAct's:

* alpaca: ``json.dumps(records, indent=4)`` (ASCII escapes, no final newline) of
  ``{"instruction": question, "input": "", "output": "Thought: ...\\nAction: ...\\n
  Observation: ...\\n..."}``;
* chat: one ``json.dumps({"messages": [...]})`` per line, the question stripped (as in FireAct's
  chat files).

Converting the runs behind FireAct's four sets gives their records byte for byte except the ones
no run can give, listed with reasons in ``tests/test_convert_fireact_sets.py``: alpaca records
with the question's later lines (MMLU options) at the start of ``output``, with two observations
in a row, or with a thought and no action; chat lines with two turns of one role in a row, that
start with an assistant turn, or (``hotpotqa.jsonl`` only) keep a question's trailing spaces;
and one IO row of ``hotpotqa_multimethod`` has no chat line.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fireact.data.fireact_import import import_fireact_trajectories  # read from here too
from fireact.data.records import Source, is_success, maybe_success, require_text
from fireact.data.shapes import ANSWER_METHODS, alpaca_output, chat_turns, episode_blocks
from fireact.data.shapes import parse_blocks as parse_blocks  # read from here too
from fireact.errors import FireactError
from fireact.files import iter_jsonl
from fireact.outputs import atomic_write_text, os_errors, refuse_overlap
from fireact.runs import run_inputs
from fireact.trajectory import Block as Block  # read from here too

FORMATS = ("alpaca", "chat")
KEEPS = ("success", "all")
RUN_FILES = ("episodes.jsonl", "trajectories.jsonl")  # looked for, in order, in a run folder


# ---------------------------------------------------------------- reading episodes


def episode_file(path: Path) -> Path:
    """The episode JSONL of a run folder (or the file itself)."""
    if not path.exists():
        raise FireactError(f"{path}: not found (expected a run folder or an episodes JSONL file)")
    if not path.is_dir():
        return path
    for name in RUN_FILES:
        if (path / name).is_file():
            return path / name
    raise FireactError(f"{path}: no {' or '.join(RUN_FILES)} in this folder (is it a run folder?)")


def read_episodes(path: Path) -> list[tuple[Source, dict[str, Any]]]:
    """The episodes of one input: a run folder, a JSONL file, or a FireAct trajectory JSON."""
    path = episode_file(Path(path))
    if path.suffix == ".json":
        records = import_fireact_trajectories(path)
        return [(Source(path, f"entry {r['id']}"), r) for r in records]
    episodes = [(Source(path, str(lineno)), record) for lineno, record in iter_jsonl(path)]
    if not episodes:
        raise FireactError(f"{path}: no episodes in this file")
    return episodes


# ---------------------------------------------------------------- convert


@dataclass
class Example:
    """One kept episode, ready to write."""

    question: str
    blocks: list[Block]
    method: str
    task: str

    def alpaca(self) -> dict[str, str]:
        output = alpaca_output(self.blocks, final_newline=self.method not in ANSWER_METHODS)
        return {"instruction": self.question, "input": "", "output": output}

    def chat(self) -> dict[str, list[dict[str, str]]]:
        return {"messages": chat_turns(self.question.strip(), self.blocks)}


def select(
    episodes: Iterable[tuple[Source, dict[str, Any]]],
    keep: str,
    methods: set[str] | None,
    dedupe: bool,
    stats: Counter[str],
) -> list[Example]:
    """Apply the filters in order: method, success, empty trajectory, duplicate question."""
    kept: list[Example] = []
    seen: set[tuple[str, str]] = set()
    for source, record in episodes:
        question = require_text(source, record, "question")
        require_text(source, record, "trajectory")
        method = str(record.get("method") or "react")
        task = str(record.get("task") or "unknown")
        if methods is not None and method not in methods:
            stats["dropped_method"] += 1
            continue
        success = is_success(source, record) if keep == "success" else maybe_success(record)
        if keep == "success" and not success:
            stats["dropped_failed"] += 1
            continue
        blocks = episode_blocks(source, record, method, task, success)
        if not blocks:
            stats["dropped_empty"] += 1
            continue
        key = (method, question.strip())
        if dedupe and key in seen:
            stats["dropped_duplicate"] += 1
            continue
        seen.add(key)
        kept.append(Example(question, blocks, method, task))
    return kept


def alpaca_text(examples: list[Example]) -> str:
    """FireAct's alpaca file: ``json.dumps(indent=4)``, ASCII escapes, no final newline."""
    return json.dumps([e.alpaca() for e in examples], indent=4)


def chat_text(examples: list[Example]) -> str:
    """OpenAI chat JSONL: one ``json.dumps`` per line, each line ending in a newline."""
    return "".join(json.dumps(e.chat()) + "\n" for e in examples)


def write_atomically(out: Path, text: str) -> None:
    """Write through a temporary file and rename, so a crash never leaves half a file."""
    with os_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, text)


def convert(
    inputs: list[Path],
    to: Literal["alpaca", "chat"],
    out: Path,
    *,
    keep: Literal["success", "all"] = "success",
    methods: set[str] | None = None,
    dedupe: bool = True,
    shuffle_seed: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Convert runs (folders or JSONL files, mixed in the given order) to one fine-tuning file.

    Keeps successful episodes (``keep="success"``, the default) or all; only `methods` when
    given; drops later episodes that repeat a (method, question) pair when `dedupe` (so a
    multi-method mix keeps one trajectory per method and question, as FireAct's multimethod sets
    do); shuffles with ``random.Random(shuffle_seed)`` when a seed is given. Returns the counts.
    """
    if to not in FORMATS:
        raise FireactError(f"unknown format {to!r}: use one of {', '.join(FORMATS)}")
    if keep not in KEEPS:
        raise FireactError(f"unknown keep {keep!r}: use one of {', '.join(KEEPS)}")
    if not inputs:
        raise FireactError("no inputs: name one or more run folders or episode JSONL files")
    out = Path(out)
    refuse_overlap([out], [p for path in inputs for p in run_inputs(path)], what="--out")
    if out.exists() and not overwrite:
        raise FireactError(f"{out}: already exists (use overwrite to replace it)")
    if out.is_dir():
        raise FireactError(f"{out}: is a folder, expected a file name")
    stats: Counter[str] = Counter()
    episodes: list[tuple[Source, dict[str, Any]]] = []
    for path in inputs:
        episodes.extend(read_episodes(Path(path)))
    examples = select(episodes, keep, methods, dedupe, stats)
    if not examples:
        raise FireactError(_nothing_kept(len(episodes), keep, methods, stats))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(examples)
    write_atomically(out, alpaca_text(examples) if to == "alpaca" else chat_text(examples))
    return {
        "out": str(out),
        "format": to,
        "inputs": len(inputs),
        "episodes": len(episodes),
        "kept": len(examples),
        "dropped_failed": stats["dropped_failed"],
        "dropped_method": stats["dropped_method"],
        "dropped_duplicate": stats["dropped_duplicate"],
        "dropped_empty": stats["dropped_empty"],
        "by_method": dict(sorted(Counter(e.method for e in examples).items())),
        "by_task": dict(sorted(Counter(e.task for e in examples).items())),
    }


def _nothing_kept(total: int, keep: str, methods: set[str] | None, stats: Counter[str]) -> str:
    reasons = [f"{n} {name[len('dropped_') :]}" for name, n in sorted(stats.items()) if n]
    hint = ""
    if stats["dropped_failed"]:
        hint = " (keep='all' keeps failed episodes too)"
    elif stats["dropped_method"]:
        hint = f" (methods {sorted(methods or [])} matched none)"
    return (
        f"nothing to write: all {total} episodes were dropped ({', '.join(reasons)}){hint}"
        if reasons
        else f"nothing to write: none of the {total} episodes has a trajectory (keep={keep})"
    )
