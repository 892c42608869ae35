"""Parsing what the model writes: a thought, an action line, an action call, a CoT answer.

Owns the text rules of one model turn (SPEC §2), nothing else:

* `parse_turn(text)` splits an output such as ``" I should search X.\\nAction: search[X]"`` (few-shot
  mode, where the prompt ended in ``Thought:``) or ``"Thought: ...\\nAction: ..."`` (fine-tuned
  and chat modes) into ``(thought, action)``. The action marker is the first ``Action:`` (ReAct's
  numbered ``Action 3:`` is accepted) starting a word; the action is the rest of that line,
  stripped; the thought is everything before the marker minus a leading ``Thought:`` (or
  ``Thought 3:``), without leading whitespace or trailing line breaks (trailing spaces are the
  model's and are kept, as FireAct's data keeps them). No marker, or nothing after it on its
  line, means no action (`None`).
* `parse_action(action)` reads ``name[argument]``: the name is the text before the first ``[``
  (stripped, lower-cased, a single word), the argument everything between the first ``[`` and
  the last ``]``, kept exactly (tools and scorers normalise). Anything else is `None`.
* `parse_answer(text)` reads a CoT output ``"reasoning\\nAnswer: X"`` into ``(thought, X)``.

The trajectory text these turns end up in is written and read by `fireact.trajectory`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from fireact.trajectory import ACTION, ANSWER, STEP_NUMBER, THOUGHT

_ACTION = re.compile(rf"\b{ACTION}{STEP_NUMBER}:")
_ANSWER = re.compile(rf"\b{ANSWER}:")
_THOUGHT_PREFIX = re.compile(rf"^\s*{THOUGHT}{STEP_NUMBER}:")
_NAME = re.compile(r"\w+")


class Turn(NamedTuple):
    """One model output split into its thought and its action line (None: no action)."""

    thought: str
    action: str | None


def strip_thought_prefix(text: str) -> str:
    """The text without a leading ``Thought:`` / ``Thought N:`` marker, leading whitespace or
    trailing line breaks."""
    return _THOUGHT_PREFIX.sub("", text, count=1).lstrip().rstrip("\r\n")


def parse_turn(text: str) -> Turn:
    """Split a model output into (thought, action line or None); see the module doc."""
    match = _ACTION.search(text)
    if match is None:
        return Turn(strip_thought_prefix(text), None)
    thought = strip_thought_prefix(text[: match.start()])
    action = text[match.end() :].split("\n", 1)[0].strip()
    return Turn(thought, action or None)


def first_line(text: str) -> str:
    """The first line of a thought-only output, without a ``Thought:`` marker (ReAct's rule)."""
    return strip_thought_prefix(text).split("\n", 1)[0].strip()


def parse_action(action: str) -> tuple[str, str] | None:
    """``name[argument]`` → (lower-cased name, argument); None when malformed."""
    open_at = action.find("[")
    close_at = action.rfind("]")
    if open_at < 0 or close_at < open_at:
        return None
    name = action[:open_at].strip().lower()
    if not _NAME.fullmatch(name):
        return None
    return name, action[open_at + 1 : close_at]


def parse_answer(text: str) -> tuple[str, str | None]:
    """A CoT output → (thought, answer or None); the answer is the rest of the ``Answer:`` line."""
    match = _ANSWER.search(text)
    if match is None:
        return strip_thought_prefix(text), None
    thought = strip_thought_prefix(text[: match.start()])
    return thought, text[match.end() :].split("\n", 1)[0].strip()


def one_line(text: str) -> str:
    """Observation text on one line: each line break becomes a space (nothing else changes)."""
    if "\n" in text or "\r" in text:
        text = " ".join(text.splitlines())
    return text
