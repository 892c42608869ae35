"""SFT records → token ids + labels, with the loss mask on exact token boundaries.

Owns reading FireAct's two training formats as they are (each as a JSON list or as JSONL; the
format is told by the first record) and turning each record into an `Example` (``input_ids``,
``labels``; label -100 = no loss):

* alpaca JSON ``[{instruction, input, output}]``: the prompt is the alpaca template (the
  variant with ``### Input:`` when ``input`` is not empty), the response is ``output``. The
  output is cut into segments at line starts: a ``Thought:``/``Action:`` line opens a model
  segment, an ``Observation:`` line an observation segment; a line with no such label continues
  the segment above (multi-line thoughts or observations). Text before the first label (the MMLU
  options that FireAct's multitask sets put at the start of ``output``) is counted as
  ``output_preamble`` and treated like the prompt under ``mask: model_turns``.
* chat JSONL ``{"messages": [...]}``: rendered with the tokenizer's chat template when it has
  one (the text of the first k messages must be a prefix of the first k+1, which holds for the
  usual templates), else the plain rendering of the `hf` backend (``"role: content"`` lines
  joined by newlines). Each assistant turn — from the end of the generation prompt to the end
  of its rendered turn, end-of-turn tokens included — is a model segment. Records the template
  rejects (FireAct's multimethod chat set has a few with two turns of one role in a row) are
  skipped and counted.

Which segments carry loss is the `mask` rule of `fireact.train.config`. ``learn_stop`` also
supervises the ``Observation:`` label after each action, the stop string the agent waits for.

Token boundaries are exact, and the tokens are those the agent's model sees: the text is
tokenised as a whole, and each boundary is checked by tokenising the text before it. Where a
token would straddle a boundary (the plain chat rendering's ``"assistant: "`` + ``"Thought"``),
the text is split there, as the agent's prompt ends there, and the rest is tokenised as a
continuation (``split_boundaries``). FireAct's alpaca sets have no such boundary. Plain text
gets the tokenizer's own leading special tokens (BOS) and, with ``add_eos``, EOS labelled like
the last segment; a chat template writes its own.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from fireact.agent.prompts import ALPACA_TEMPLATE
from fireact.errors import FireactError
from fireact.files import iter_jsonl, read_json, read_text
from fireact.llm.base import render_chat

ALPACA_INPUT_TEMPLATE = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
IGNORE = -100
_LABEL = re.compile(r"^(Thought|Action|Observation)\b[^:\n]*:")

# A segment: (text, role) with role "prompt" | "model" | "observation" | "preamble" | "stop".
Segment = tuple[str, str]
SUPERVISED = {
    "model_turns": {"model", "stop"},
    "output": {"model", "observation", "preamble", "stop"},
    "none": {"prompt", "model", "observation", "preamble", "stop"},
}


@dataclass
class Example:
    """One tokenised training sequence."""

    input_ids: list[int]
    labels: list[int]

    @property
    def supervised(self) -> int:
        """Tokens that carry loss (the first token never does: nothing predicts it)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE)


@dataclass
class DataStats:
    """What loading found; reported in the training summary."""

    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    output_preamble: int = 0
    split_boundaries: int = 0
    inexact_boundaries: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading ---------------------------------------------------------------------------------
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


def record_text(record: dict[str, Any]) -> str:
    """All text of a record (to train a tiny tokenizer on)."""
    if "messages" in record:
        return "\n".join(m["content"] for m in record["messages"])
    return f"{alpaca_prompt(record)}{record['output']}"


# -- segments --------------------------------------------------------------------------------
def alpaca_prompt(record: dict[str, Any]) -> str:
    """The alpaca prompt of a record (the agent's fine-tuned prompt when input is empty)."""
    if record.get("input"):
        return ALPACA_INPUT_TEMPLATE.format(
            instruction=record["instruction"], input=record["input"]
        )
    return ALPACA_TEMPLATE.format(question=record["instruction"])


def output_segments(output: str, learn_stop: bool = False) -> list[Segment]:
    """Cut a ReAct output into model / observation / preamble segments at line starts."""
    segments: list[Segment] = []
    for line in output.splitlines(keepends=True):
        match = _LABEL.match(line)
        if match is None:  # a continuation line, or text before the first label
            if segments:
                segments[-1] = (segments[-1][0] + line, segments[-1][1])
            else:
                segments.append((line, "preamble"))
            continue
        role = "observation" if match.group(1) == "Observation" else "model"
        if role == "observation" and learn_stop and segments and segments[-1][1] == "model":
            segments.append((match.group(0), "stop"))
            line = line[match.end() :]
        if segments and segments[-1][1] == role:
            segments[-1] = (segments[-1][0] + line, role)
        else:
            segments.append((line, role))
    return segments


def alpaca_segments(record: dict[str, Any], learn_stop: bool = False) -> list[Segment]:
    return [(alpaca_prompt(record), "prompt"), *output_segments(record["output"], learn_stop)]


def chat_segments(messages: list[dict[str, str]], tokenizer: Any, template: str) -> list[Segment]:
    """Chat messages as segments: assistant turns are "model", later user turns "observation"."""
    if not uses_template(tokenizer, template):
        return _plain_chat_segments(messages)
    render = _template_renderer(tokenizer)
    segments: list[Segment] = []
    done = ""
    for k, message in enumerate(messages):
        is_model = message["role"] == "assistant"
        head = render(messages[:k], is_model) if k else ""
        full = render(messages[: k + 1], False)
        if not (head.startswith(done) and full.startswith(head)):
            raise ValueError("chat template is not prefix-stable")
        if is_model:
            segments.append((head[len(done) :], "prompt" if k <= 1 else "observation"))
            segments.append((full[len(head) :], "model"))
        else:
            segments.append((full[len(done) :], "prompt" if k == 0 else "observation"))
        done = full
    return segments


def uses_template(tokenizer: Any, chat_template: str) -> bool:
    """Whether chat records are rendered with the tokenizer's template (else plain)."""
    return chat_template != "plain" and bool(getattr(tokenizer, "chat_template", None))


def _template_renderer(tokenizer: Any) -> Any:
    def render(messages: list[dict[str, str]], generation_prompt: bool) -> str:
        if not messages:
            return ""
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )

    return render


def _plain_chat_segments(messages: list[dict[str, str]]) -> list[Segment]:
    """``role: content`` lines, as `fireact.llm.base.render_chat` renders a prompt."""
    segments: list[Segment] = []
    for k, message in enumerate(messages):
        prefix = f"{message['role']}: "
        end = "\n" if k + 1 < len(messages) else ""
        other = "prompt" if k == 0 else "observation"
        if message["role"] == "assistant":
            segments += [(prefix, other), (message["content"] + end, "model")]
        else:
            segments.append((prefix + message["content"] + end, other))
    assert render_chat(messages).startswith("".join(t for t, _ in segments))
    return segments


# -- tokenising ------------------------------------------------------------------------------
def tokenize_segments(
    segments: list[Segment], tokenizer: Any, mask: str, *, special: bool, add_eos: bool
) -> tuple[Example, int, int]:
    """Token ids and labels of the segments; also the counts of split and inexact boundaries.

    The text is tokenised as a whole except at boundaries that fall inside a token (e.g. the
    plain chat rendering's ``"assistant: "`` followed by ``"Thought"``): there the text is split,
    as the agent's prompt ends there at inference, and the rest is tokenised as a continuation.
    `special`: put the tokenizer's leading special tokens (BOS) first, as it does for a prompt
    (chat templates write their own). `add_eos`: end with EOS, labelled like the last segment.
    """
    groups = _split_at_straddles(segments, tokenizer)
    ids: list[int] = []
    labels: list[int] = []
    inexact = 0
    for n, group in enumerate(groups):
        group_ids, group_labels, bad = _tokenize_group(group, tokenizer, mask, continuation=n > 0)
        ids += group_ids
        labels += group_labels
        inexact += bad
    prefix = _leading_specials(tokenizer) if special else []
    ids, labels = prefix + ids, [IGNORE] * len(prefix) + labels
    if add_eos and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id if segments[-1][1] in SUPERVISED[mask] else IGNORE)
    return Example(ids, labels), len(groups) - 1, inexact


def _split_at_straddles(segments: list[Segment], tokenizer: Any) -> list[list[Segment]]:
    """Segments grouped so that no boundary between two groups falls inside a token."""
    text = "".join(t for t, _ in segments)
    ids = _encode(tokenizer, text)
    groups: list[list[Segment]] = [[segments[0]]]
    char = len(segments[0][0])
    for segment in segments[1:]:
        if not _boundary(partial(_encode, tokenizer), text, char, ids)[1]:
            groups.append([])
        groups[-1].append(segment)
        char += len(segment[0])
    return groups


def _tokenize_group(
    group: list[Segment], tokenizer: Any, mask: str, continuation: bool
) -> tuple[list[int], list[int], int]:
    """Ids and labels of one group of segments, and how many inner boundaries were inexact."""
    encode = partial(_encode_after if continuation else _encode, tokenizer)
    text = "".join(t for t, _ in group)
    ids = encode(text)
    bounds, inexact, char = [0], 0, 0
    for seg_text, _ in group[:-1]:
        char += len(seg_text)
        index, exact = _boundary(encode, text, char, ids)
        bounds.append(index)
        inexact += not exact
    bounds.append(len(ids))
    labels = [IGNORE] * len(ids)
    for (_, role), begin, stop in zip(group, bounds, bounds[1:], strict=False):
        if role in SUPERVISED[mask]:
            labels[begin:stop] = ids[begin:stop]
    return ids, labels, inexact


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def _encode_after(tokenizer: Any, text: str) -> list[int]:
    """Tokens of `text` in the middle of a document (no leading-space artefacts of a start)."""
    anchor = _encode(tokenizer, "\n")
    both = _encode(tokenizer, "\n" + text)
    if both[: len(anchor)] == anchor:
        return both[len(anchor) :]
    return _encode(tokenizer, text)


def _boundary(
    encode: Callable[[str], list[int]], text: str, char: int, ids: list[int]
) -> tuple[int, bool]:
    """Token index where `text[char:]` starts, and whether no token straddles `char`.

    A straddling token goes to the later segment.
    """
    head = encode(text[:char])
    if ids[: len(head)] == head:
        return len(head), True
    common = next((i for i, (a, b) in enumerate(zip(head, ids, strict=False)) if a != b), len(ids))
    return min(common, len(head)), False


def _leading_specials(tokenizer: Any) -> list[int]:
    """The special tokens the tokenizer puts before a text (e.g. BOS), found by comparison."""
    plain = _encode(tokenizer, "a")
    full = list(tokenizer("a").input_ids)
    for i in range(len(full) - len(plain) + 1):
        if full[i : i + len(plain)] == plain:
            return full[:i]
    return []


# -- the whole set ---------------------------------------------------------------------------
def build_examples(
    records: list[dict[str, Any]],
    tokenizer: Any,
    *,
    mask: str = "model_turns",
    chat_template: str = "auto",
    learn_stop: bool = False,
    add_eos: bool = True,
    stats: DataStats | None = None,
) -> list[Example]:
    """Tokenise records (alpaca or chat) into Examples, counting oddities in `stats`."""
    stats = stats if stats is not None else DataStats()
    examples = []
    for record in records:
        stats.records += 1
        try:
            segments, plain = record_segments(record, tokenizer, chat_template, learn_stop)
        except Exception as err:  # the chat template's own error (e.g. roles must alternate)
            stats.skip(f"chat template: {str(err)[:80]}")
            continue
        stats.output_preamble += any(role == "preamble" for _, role in segments)
        example, split, inexact = tokenize_segments(
            segments, tokenizer, mask, special=plain, add_eos=plain and add_eos
        )
        stats.split_boundaries += split
        stats.inexact_boundaries += inexact
        if example.supervised == 0:
            stats.skip("no supervised tokens")
            continue
        examples.append(example)
    return examples


def record_segments(
    record: dict[str, Any], tokenizer: Any, chat_template: str, learn_stop: bool
) -> tuple[list[Segment], bool]:
    """The segments of one record, and whether it is plain text (we add BOS/EOS ourselves)."""
    if "messages" not in record:
        return alpaca_segments(record, learn_stop), True
    segments = chat_segments(record["messages"], tokenizer, chat_template)
    return segments, not uses_template(tokenizer, chat_template)


def split_eval(
    records: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A seeded random (train, eval) split; eval gets round(fraction * n), at least 1."""
    if fraction <= 0:
        return records, []
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(fraction * len(records)))
    if n_eval >= len(records):
        raise FireactError(f"eval_fraction {fraction} leaves no training records of {len(records)}")
    chosen = set(order[:n_eval])
    train = [r for i, r in enumerate(records) if i not in chosen]
    return train, [records[i] for i in sorted(chosen)]


def describe(stats: DataStats) -> str:
    """One line for the log."""
    return json.dumps(stats.as_dict())
