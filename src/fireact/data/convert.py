"""Turning agent runs into fine-tuning data (SPEC §4).

Owns `convert` (run folders / episode JSONL files → FireAct's alpaca JSON or OpenAI chat JSONL,
with the filters: success only, methods, dedupe, seeded shuffle) and
`import_fireact_trajectories` (FireAct's ``trajs/*.json`` files → our episode records).

Everything is built from an episode's ``question`` and ``trajectory`` text (and, for Reflexion,
its ``attempts``), never from its ``messages``. A trajectory is read as blocks that start with
``Thought:``, ``Action:``, ``Observation:`` or ``Answer:`` at the beginning of a line (a line
without a marker continues the block before it). An ``Answer: x`` block (CoT / IO text) becomes
``Action: finish[x]`` followed, unless an observation is already there, by the finish
observation.

The rules, per method, that give FireAct's ``data/finetune`` shapes:

* react: the trajectory as it is.
* cot, io (one step): ``Thought: ...`` (cot only) + ``Action: finish[x]`` + the finish
  observation; in alpaca the output does not end in a newline, as FireAct's CoT/IO rows.
* reflexion: every try, in order, in one text, each reflection inline as FireAct's multimethod
  sets show it: the first thought of the try after a reflection reads
  ``Thought: <reflection> <thought>`` (FireAct's ``reflection.strip() + " " + thought``; a try
  that starts without a thought gets ``Thought: <reflection>`` of its own). An earlier try's
  steps are all kept except a final ``finish`` step (its thought, action and ``Episode finished``
  observation): in FireAct's format an episode has one finish, at its end, and a training
  example must not teach the model to give the wrong answer it gave. (In FireAct's sets the
  inline text is a fixed cue after 5 steps, ``Now that I haven't solved the task within 5 steps,
  let me do a reflection and think about how to improve my strategy.``, or after 9, ``... I need
  to wrap up and finish this task in the next step.``, followed by the model's ``Thought: ...``.)
* The finish observation reads ``Episode finished, reward = <r>`` with FireAct's ``<r>``: ``1`` /
  ``0`` for cot and io (every task), and for react / reflexion the task's own reward as FireAct's
  tasks print it: ``True`` / ``False`` for hotpotqa and bamboogle, ``1`` / ``0`` for strategyqa
  and mmlu (other tasks: as written). Our runner writes ``True`` / ``False``; the converter
  rewrites it.

Output shapes, byte for byte those of FireAct's files:

* alpaca: ``json.dumps(records, indent=4)`` (ASCII escapes, no final newline) of
  ``{"instruction": question, "input": "", "output": "Thought: ...\\nAction: ...\\n
  Observation: ...\\n..."}`` — one line per block, each ending in ``\\n`` (but the last of a
  cot / io output);
* chat: one ``json.dumps({"messages": [...]})`` per line: the question, stripped (as in
  FireAct's chat files), as a user turn, the blocks up to an observation as one assistant turn
  (``"Thought: ...\\nAction: ..."``), each observation as a user turn ``"Observation: ..."`` (so
  a finished episode ends with the ``Episode finished`` turn).

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
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fireact.errors import FireactError
from fireact.files import iter_jsonl, read_json
from fireact.outputs import atomic_write_text, os_errors, refuse_overlap
from fireact.runs import run_inputs

FORMATS = ("alpaca", "chat")
KEEPS = ("success", "all")
RUN_FILES = ("episodes.jsonl", "trajectories.jsonl")  # looked for, in order, in a run folder
MARKERS = ("Thought", "Action", "Observation", "Answer")
ALPACA_HEAD = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\n"
)
ALPACA_TAIL = "\n\n### Response:\n"
KNOWN_TASKS = ("hotpotqa", "bamboogle", "strategyqa", "mmlu")
ANSWER_METHODS = ("cot", "io")  # one step, FireAct's "reward = 1 / 0", no final newline in alpaca
INT_REWARD_TASKS = ("strategyqa", "mmlu")  # FireAct's evaluate returns 1 / 0 (others: True/False)
FINISHED = "Episode finished"

_MARK = re.compile(r"^(Thought|Action|Observation|Answer):[ ]?")
_FIRST_STEP = re.compile(r"^(?:Thought|Action):", re.MULTILINE)
_REWARD = re.compile(r"Episode finished, reward = (True|False|1|0)")


@dataclass(frozen=True)
class Block:
    """One marked block of a trajectory: its marker and its text (may span lines)."""

    kind: str  # a MARKERS entry, or "" for text before the first marker
    text: str

    def render(self) -> str:
        if not self.kind:
            return self.text
        return f"{self.kind}: {self.text}" if self.text else f"{self.kind}:"


@dataclass(frozen=True)
class Source:
    """Where an episode came from, for error messages: a file and a line (or an entry id)."""

    path: Path
    where: str  # "12" (a line) or "entry 6238"

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.where}" if self.where.isdigit() else f"{self.path} ({self.where})"
        )


# ---------------------------------------------------------------- trajectory text


def parse_blocks(text: str) -> list[Block]:
    """The trajectory's blocks, in order (the final newline(s) are not part of the last one)."""
    blocks: list[tuple[str, list[str]]] = []
    for line in text.rstrip("\n").split("\n") if text.strip() else []:
        match = _MARK.match(line)
        if match:
            blocks.append((match.group(1), [line[match.end() :]]))
        elif blocks:
            blocks[-1][1].append(line)
        else:
            blocks.append(("", [line]))
    return [Block(kind, "\n".join(lines)) for kind, lines in blocks]


def normalise_blocks(blocks: list[Block], em: bool) -> list[Block]:
    """Rewrite ``Answer: x`` blocks as ``Action: finish[x]`` (+ the finish observation)."""
    out: list[Block] = []
    for i, block in enumerate(blocks):
        if block.kind != "Answer":
            out.append(block)
            continue
        out.append(Block("Action", f"finish[{block.text.strip()}]"))
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if following is None or following.kind != "Observation":
            out.append(Block("Observation", f"{FINISHED}, reward = {em}"))
    return out


def reward_word(success: bool, method: str, task: str) -> str | None:
    """FireAct's text for a finish reward: ``1``/``0`` for cot and io and for strategyqa / mmlu
    (whose ``evaluate`` returns an int), ``True``/``False`` for hotpotqa / bamboogle; None (keep
    what is written) for other tasks."""
    if method in ANSWER_METHODS or task in INT_REWARD_TASKS:
        return str(int(success))
    if task in KNOWN_TASKS:
        return str(success)
    return None


def fireact_rewards(blocks: list[Block], method: str, task: str) -> list[Block]:
    """Each ``Episode finished, reward = <True|False|1|0>`` observation in FireAct's words."""
    out: list[Block] = []
    for block in blocks:
        match = _REWARD.fullmatch(block.text) if block.kind == "Observation" else None
        word = reward_word(match.group(1) in ("True", "1"), method, task) if match else None
        out.append(Block("Observation", f"{FINISHED}, reward = {word}") if word else block)
    return out


def without_finish(blocks: list[Block]) -> list[Block]:
    """A failed try's blocks less its final finish step (thought, action, finish observation)."""
    if not blocks or blocks[-1].kind != "Observation" or not blocks[-1].text.startswith(FINISHED):
        return blocks
    start = len(blocks) - 1
    if start > 0 and blocks[start - 1].kind == "Action":
        start -= 1
        if start > 0 and blocks[start - 1].kind == "Thought":
            start -= 1
    return blocks[:start]


def with_reflection(reflection: str, blocks: list[Block]) -> list[Block]:
    """The blocks of a try with the reflection before it inline: its first thought becomes
    ``<reflection> <thought>`` (a try that starts without a thought gets one of its own)."""
    reflection = reflection.strip()
    if not reflection:
        return blocks
    if blocks and blocks[0].kind == "Thought":
        text = f"{reflection} {blocks[0].text}" if blocks[0].text else reflection
        return [Block("Thought", text), *blocks[1:]]
    return [Block("Thought", reflection), *blocks]


def alpaca_output(blocks: list[Block], final_newline: bool = True) -> str:
    """FireAct's alpaca ``output``: every block on its own line(s), each ending in a newline
    (but the last when `final_newline` is false, as in FireAct's CoT / IO rows)."""
    text = "".join(block.render() + "\n" for block in blocks)
    return text if final_newline else text.removesuffix("\n")


def chat_turns(question: str, blocks: list[Block]) -> list[dict[str, str]]:
    """The chat messages: the question, then assistant turns and observation user turns."""
    messages = [{"role": "user", "content": question}]
    pending: list[str] = []
    for block in blocks:
        if block.kind != "Observation":
            pending.append(block.render())
            continue
        if pending:
            messages.append({"role": "assistant", "content": "\n".join(pending)})
            pending = []
        messages.append({"role": "user", "content": block.render()})
    if pending:
        messages.append({"role": "assistant", "content": "\n".join(pending)})
    return messages


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


def require_text(source: Source, record: Any, field: str) -> str:
    """The string field `field` of an episode record, or an error naming the spot."""
    if not isinstance(record, dict):
        raise FireactError(f"{source}: expected a JSON object (an episode), got {_kind(record)}")
    if field not in record:
        raise FireactError(f"{source}: episode has no {field!r} field")
    value = record[field]
    if not isinstance(value, str):
        raise FireactError(f"{source}: field {field!r} must be a string, got {_kind(value)}")
    return value


def is_success(source: Source, record: dict[str, Any]) -> bool:
    """Reward 1: ``em`` true (or, without ``em``, ``reward`` true / 1)."""
    for field in ("em", "reward"):
        if field in record:
            value = record[field]
            if isinstance(value, bool | int | float) and not isinstance(value, str):
                return bool(value)
            raise FireactError(
                f"{source}: field {field!r} must be true/false or 0/1, got {value!r}"
            )
    raise FireactError(
        f"{source}: episode has no 'em' or 'reward' field (needed to keep successes;"
        " use keep='all' to keep every episode)"
    )


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def reflexion_tries(source: Source, record: dict[str, Any]) -> list[tuple[str, str]]:
    """(trajectory, reflection written after it) of each earlier try of a Reflexion episode.

    The reflection is the attempt's ``reflection``, else the matching ``reflections`` entry.
    """
    attempts = record.get("attempts") or []
    reflections = record.get("reflections") or []
    if not isinstance(attempts, list) or not isinstance(reflections, list):
        raise FireactError(f"{source}: fields 'attempts' and 'reflections' must be lists")
    tries: list[tuple[str, str]] = []
    for i, attempt in enumerate(attempts):
        if not isinstance(attempt, dict) or not isinstance(attempt.get("trajectory"), str):
            raise FireactError(
                f"{source}: attempts[{i}] must be an object with a 'trajectory' text"
            )
        reflection = attempt.get("reflection", reflections[i] if i < len(reflections) else "")
        if not isinstance(reflection, str):
            raise FireactError(f"{source}: attempts[{i}]: 'reflection' must be a string")
        tries.append((attempt["trajectory"], reflection))
    return tries


def episode_blocks(
    source: Source, record: dict[str, Any], method: str, task: str, success: bool
) -> list[Block]:
    """The blocks of one episode in FireAct's shape for its method (see the module doc)."""
    blocks: list[Block] = []
    reflection = ""
    if method == "reflexion":
        for trajectory, written_after in reflexion_tries(source, record):
            blocks += with_reflection(reflection, without_finish(parse_blocks(trajectory)))
            reflection = written_after
    last = normalise_blocks(parse_blocks(require_text(source, record, "trajectory")), success)
    if last:  # a try that wrote nothing (an error) leaves its reflection out
        blocks += with_reflection(reflection, last)
    return fireact_rewards(blocks, method, task)


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
        success = is_success(source, record) if keep == "success" else _maybe_success(record)
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


def _maybe_success(record: dict[str, Any]) -> bool:
    value = record.get("em", record.get("reward", False))
    return bool(value) if isinstance(value, bool | int | float) else False


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


# ---------------------------------------------------------------- FireAct trajectories


def import_fireact_trajectories(
    path: Path, *, method: str = "react", task: str | None = None
) -> list[dict[str, Any]]:
    """Read FireAct's trajectory JSON (``{index: {reward, em, f1, gt, pred, prompt, traj,
    traj_by_line}}``, as its ``generation.py`` writes) into our episode records.

    ``traj`` is the question followed by the Thought/Action/Observation lines (few-shot runs),
    the same behind the alpaca prompt (``--alpaca_format`` runs), or a chat message list
    (``--chatgpt_format`` runs); all three are read. The task defaults to the file name's first
    word when it names a task (``hotpotqa_dev_0_500_...json``).
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise FireactError(
            f"{path}: expected a JSON object mapping ids to FireAct trajectories, got {_kind(data)}"
        )
    if not data:
        raise FireactError(f"{path}: no episodes in this file")
    task = task or _task_from_name(path)
    return [_fireact_record(path, str(key), entry, method, task) for key, entry in data.items()]


def _task_from_name(path: Path) -> str | None:
    first = path.stem.split("_")[0].lower()
    return first if first in KNOWN_TASKS else None


def _fireact_record(
    path: Path, key: str, entry: Any, method: str, task: str | None
) -> dict[str, Any]:
    where = f"{path} (entry {key})"
    if not isinstance(entry, dict):
        raise FireactError(f"{where}: expected an object with 'traj', got {_kind(entry)}")
    if "traj" not in entry:
        raise FireactError(f"{where}: no 'traj' field")
    question, trajectory = split_fireact_traj(where, entry["traj"])
    em = entry.get("em", entry.get("reward", False))
    blocks = parse_blocks(trajectory)
    finished = any(b.text.startswith("Episode finished") for b in blocks if b.kind == "Observation")
    return {
        "id": key,
        "task": task,
        "method": method,
        "format": "chat" if isinstance(entry["traj"], list) else "text",
        "question": question,
        "gold": entry.get("gt"),
        "prediction": entry.get("pred"),
        "finished": finished,
        "reward": em,
        "em": em,
        "f1": entry.get("f1", 0.0),
        "steps": sum(1 for b in blocks if b.kind == "Action"),
        "trajectory": trajectory,
        "messages": chat_turns(question, blocks),
    }


def split_fireact_traj(where: str, traj: Any) -> tuple[str, str]:
    """(question, trajectory text) of one FireAct ``traj`` value (text or chat list)."""
    if isinstance(traj, list):
        return _split_chat_traj(where, traj)
    if not isinstance(traj, str):
        raise FireactError(f"{where}: 'traj' must be text or a message list, got {_kind(traj)}")
    if traj.startswith(ALPACA_HEAD) and ALPACA_TAIL in traj:
        question, _, rest = traj[len(ALPACA_HEAD) :].partition(ALPACA_TAIL)
        return question, rest
    match = _FIRST_STEP.search(traj)
    if match is None:
        question, _, rest = traj.partition("\n")
        return question, rest
    return traj[: match.start()].rstrip("\n"), traj[match.start() :]


def _split_chat_traj(where: str, traj: list[Any]) -> tuple[str, str]:
    contents: list[str] = []
    for i, message in enumerate(traj):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise FireactError(f"{where}: traj message {i} must be an object with string content")
        contents.append(message["content"])
    if not contents or traj[0].get("role") != "user":
        raise FireactError(f"{where}: traj must start with the user question")
    return contents[0], "".join(content + "\n" for content in contents[1:])
