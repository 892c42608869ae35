"""SFT records → segments → token ids + labels (the loss mask), and the train / eval split.

Owns turning each record of FireAct's two training formats (read by `fireact.train.sft_files`)
into an `Example` (tokenised by `fireact.train.tokens`, label -100 = no loss):

* alpaca JSON ``[{instruction, input, output}]``: the prompt is the alpaca template (the
  variant with ``### Input:`` when ``input`` is not empty; `fireact.trajectory.alpaca_prompt`),
  the response is ``output``. The output is cut into segments along the blocks of
  `fireact.trajectory.blocks` (numbered markers such as ``Thought 2:`` read too): a
  ``Thought:``/``Action:`` block is a model segment, an ``Observation:`` block an observation
  segment, each with its continuation lines (multi-line thoughts or observations). Text before
  the first marker (the MMLU options that FireAct's multitask sets put at the start of
  ``output``) is counted as ``output_preamble`` and treated like the prompt under ``mask:
  model_turns``.
* chat JSONL ``{"messages": [...]}``: rendered with the tokenizer's chat template when it has
  one (the text of the first k messages must be a prefix of the first k+1, which holds for the
  usual templates), else the plain rendering of the `hf` backend (``"role: content"`` lines
  joined by newlines). Each assistant turn — from the end of the generation prompt to the end
  of its rendered turn, end-of-turn tokens included — is a model segment. Records the template
  rejects (FireAct's multimethod chat set has a few with two turns of one role in a row) are
  skipped and counted.

Which segments carry loss is the `mask` rule of `fireact.train.config`. ``learn_stop`` also
supervises the ``Observation:`` label after each action, the stop string the agent waits for.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from fireact import trajectory
from fireact.errors import FireactError
from fireact.llm.base import render_chat
from fireact.train.sft_files import detect_format as detect_format  # read from here too
from fireact.train.sft_files import read_records as read_records
from fireact.train.tokens import IGNORE as IGNORE
from fireact.train.tokens import Example, Segment, tokenize_segments

_ROLES = {"": "preamble", trajectory.OBSERVATION: "observation"}  # other blocks: "model"


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


def record_text(record: dict[str, Any]) -> str:
    """All text of a record (to train a tiny tokenizer on)."""
    if "messages" in record:
        return "\n".join(m["content"] for m in record["messages"])
    return f"{record_prompt(record)}{record['output']}"


# -- segments --------------------------------------------------------------------------------
def record_prompt(record: dict[str, Any]) -> str:
    """The alpaca prompt of a record (the agent's fine-tuned prompt when input is empty)."""
    return trajectory.alpaca_prompt(record["instruction"], record.get("input") or "")


def output_segments(output: str, learn_stop: bool = False) -> list[Segment]:
    """Cut a ReAct output into model / observation / preamble segments: the spans of its
    blocks, neighbours of one role joined (a ``Thought:`` and its ``Action:`` are one segment)."""
    segments: list[Segment] = []
    for block in trajectory.blocks(output, numbered=True):
        role = _ROLES.get(block.kind, "model")
        text = output[block.start : block.end]
        if role == "observation" and learn_stop and segments and segments[-1][1] == "model":
            label = output[block.start : block.body].rstrip(" ")  # "Observation:"
            segments.append((label, "stop"))
            text = text[len(label) :]
        if segments and segments[-1][1] == role:
            segments[-1] = (segments[-1][0] + text, role)
        else:
            segments.append((text, role))
    return segments


def alpaca_segments(record: dict[str, Any], learn_stop: bool = False) -> list[Segment]:
    return [(record_prompt(record), "prompt"), *output_segments(record["output"], learn_stop)]


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
