"""The trajectory text (FireAct's Thought / Action / Observation format) and the alpaca prompt.

Owns the format, once: the agent writes it (`render`, `render_turn`, `render_observation`,
`finish_observation`), replay, convert, the viewer and the loss mask read it with one parser
(`blocks` for the marked blocks and their character spans, `parse` for the steps), and the
fine-tuned model's prompt is `ALPACA_TEMPLATE` (`alpaca_prompt`, `split_alpaca_prompt`).

Writing. A step is written as::

    Thought: <thought>
    Action: <action>
    Observation: <observation>

each line ending in ``\\n``. The thought line is left out when the thought is empty or blank
(FireAct's IO rows, our IO method); a step without an action or an observation (`None`) has no
such line. ``finish[<answer>]`` ends an episode; its observation is ``Episode finished, reward =
<r>`` (`finish_observation`; ``<r>`` as the task prints it: True/False or 1/0).

Reading. The text is cut into lines at ``\\n``. A line that starts with a marker opens a block:
``Thought:``, ``Action:`` and ``Observation:`` (exactly so, at the start of the line), and on
request ``Answer:`` (``answers=True``: the CoT / IO text of older runs) and numbered markers such
as ``Thought 3:`` (``numbered=True``: ReAct's original numbering). The block's text is the rest
of that line after the colon and one optional space, and then every following line that opens no
block (multi-line thoughts or observations), joined by ``\\n``; the newlines that end the whole
text belong to no block's text. Text before the first marker (FireAct's MMLU rows put the
question's options there) is a block of kind ``""``, the preamble. The blocks' spans tile the
text: block *i* ends where block *i + 1* starts, the last one at the end of the text.

Steps (`parse`). An ``Observation`` block closes a step. The step's action is the last
``Action`` block since the previous observation, taken as written up to the observation (lines
after it included); its thought is everything before that action since the previous observation,
as written, less a leading ``Thought:`` marker (so a second ``Thought:`` line stays in the
thought). A step may have no thought (``""``), no action (`None`: a thought, then an
observation; or two observations in a row) or, at the end of the text, no observation (`None`: a
turn cut short). The preamble belongs to no step.

``render(parse(text)) == text`` for every text that starts with a marker, writes each marker
with one space after its colon, has a non-blank thought or none in each step, and ends in exactly
one newline: every trajectory the agent writes, and each of FireAct's 500 HotpotQA ReAct rows
(``tests/test_trajectory.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

THOUGHT, ACTION, OBSERVATION, ANSWER = "Thought", "Action", "Observation", "Answer"
FINISHED = "Episode finished"  # the start of the observation of a finish[...] action
STEP_NUMBER = r"(?: \d+)?"  # the number of ReAct's numbered markers, "Thought 3:" (a regex)

ALPACA_TEMPLATE = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{question}\n\n### Response:\n"
)
ALPACA_INPUT_TEMPLATE = (  # the alpaca variant for records with an ``input`` (training only)
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
_ALPACA_HEAD, _, _ALPACA_TAIL = ALPACA_TEMPLATE.partition("{question}")


@dataclass(frozen=True)
class Step:
    """One step of a trajectory: the model's thought and action and what it observed.

    ``thought`` is ``""`` when the step has none; ``action`` / ``observation`` are `None` when
    the step has no such line (see the module doc).
    """

    thought: str = ""
    action: str | None = None
    observation: str | None = None


@dataclass(frozen=True)
class Block:
    """One marked block of a trajectory: its marker and its text (may span lines).

    ``kind`` is ``"Thought"``, ``"Action"``, ``"Observation"``, ``"Answer"`` or ``""`` (the
    preamble). The spans index the parsed text and do not take part in ``==``: the block starts
    at ``start``, its text (with the line ends) at ``body`` (``text[start:body]`` is the marker
    as written, with its space) and it ends at ``end``. A block made by hand has spans 0.
    """

    kind: str
    text: str
    start: int = field(default=0, compare=False)
    body: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)

    def render(self) -> str:
        """The block as a line (or lines): ``Kind: text``, or ``Kind:`` when the text is empty."""
        if not self.kind:
            return self.text
        return f"{self.kind}: {self.text}" if self.text else f"{self.kind}:"


# ---------------------------------------------------------------- writing


def render_turn(thought: str, action: str | None) -> str:
    """The model's part of a step: ``Thought: t\\nAction: a`` (no final newline), the thought
    line left out when the thought is blank, the action line when the action is `None`."""
    lines = [f"{THOUGHT}: {thought}"] if thought.strip() else []
    if action is not None:
        lines.append(f"{ACTION}: {action}")
    return "\n".join(lines)


def render_observation(observation: str) -> str:
    """The observation's line, ``Observation: o`` (no final newline)."""
    return f"{OBSERVATION}: {observation}"


def render(steps: Iterable[Step]) -> str:
    """The trajectory text of the steps, each line ending in ``\\n`` (see the module doc)."""
    lines: list[str] = []
    for step in steps:
        turn = render_turn(step.thought, step.action)
        if turn:
            lines.append(turn)
        if step.observation is not None:
            lines.append(render_observation(step.observation))
    return "".join(line + "\n" for line in lines)


def finish_observation(reward: str) -> str:
    """The observation of a ``finish[...]`` action: ``Episode finished, reward = <reward>``."""
    return f"{FINISHED}, reward = {reward}"


# ---------------------------------------------------------------- reading


@lru_cache(maxsize=4)
def _marker(answers: bool, numbered: bool) -> re.Pattern[str]:
    words = [THOUGHT, ACTION, OBSERVATION] + ([ANSWER] if answers else [])
    number = STEP_NUMBER if numbered else ""
    return re.compile(rf"({'|'.join(words)}){number}:[ ]?")


def blocks(text: str, *, answers: bool = False, numbered: bool = False) -> list[Block]:
    """The marked blocks of a trajectory text, in order, with their character spans.

    The span-returning form of the parser (see the module doc for the rules): convert works on
    the blocks (``answers=True``), the loss mask on their spans (``numbered=True``), `parse`
    groups them into steps. ``""`` has no blocks; a text of blanks is one preamble block.
    """
    marker = _marker(answers, numbered)
    found: list[tuple[str, int, int, list[str]]] = []  # kind, start, body, lines
    pos = 0
    for line in text.rstrip("\n").split("\n") if text else []:
        match = marker.match(line)
        if match:
            found.append((match.group(1), pos, pos + match.end(), [line[match.end() :]]))
        elif found:
            found[-1][3].append(line)
        else:
            found.append(("", pos, pos, [line]))
        pos += len(line) + 1
    ends = [start for _, start, _, _ in found[1:]] + [len(text)] if found else []
    return [
        Block(kind, "\n".join(lines), start, body, end)
        for (kind, start, body, lines), end in zip(found, ends, strict=True)
    ]


def parse(text: str, *, numbered: bool = False) -> list[Step]:
    """The steps of a trajectory text (see the module doc for the rules).

    ``thought``, ``action`` and ``observation`` are as written: not stripped, continuation lines
    joined by ``\\n``; ``action`` / ``observation`` are `None` where the step has no such block.
    The preamble (text before the first marker) is in no step: read it with `blocks` (its first
    block, of kind ``""``). `numbered` also reads ``Thought 3:``-style markers.
    """
    steps: list[Step] = []
    turn: list[Block] = []
    for block in blocks(text, numbered=numbered):
        if block.kind == OBSERVATION:
            steps.append(_step(text, turn, block.text))
            turn = []
        elif block.kind:
            turn.append(block)
    if turn:
        steps.append(_step(text, turn, None))
    return steps


def _step(text: str, turn: list[Block], observation: str | None) -> Step:
    """A step from the Thought / Action blocks of one turn and its observation."""
    if not turn:
        return Step("", None, observation)
    first, end = turn[0], turn[-1].end
    begin = first.body if first.kind == THOUGHT else first.start
    action = next((b for b in reversed(turn) if b.kind == ACTION), None)
    if action is None:
        return Step(_written(text, begin, end), None, observation)
    thought = _written(text, begin, action.start) if action is not first else ""
    return Step(thought, _written(text, action.body, end), observation)


def _written(text: str, begin: int, end: int) -> str:
    """``text[begin:end]`` without the line end before the next block (or the text's final
    newlines, at its end)."""
    piece = text[begin:end]
    return piece.rstrip("\n") if end == len(text) else piece.removesuffix("\n")


# ---------------------------------------------------------------- the alpaca prompt


def alpaca_prompt(question: str, input_text: str = "") -> str:
    """The alpaca prompt of a question, as FireAct's fine-tuned models are asked (`input_text`:
    the template's variant with ``### Input:``, for training records that have one)."""
    if input_text:
        return ALPACA_INPUT_TEMPLATE.format(instruction=question, input=input_text)
    return ALPACA_TEMPLATE.format(question=question)


def split_alpaca_prompt(text: str) -> tuple[str, str] | None:
    """(question, response) of a text that starts with `ALPACA_TEMPLATE`'s prompt, else None."""
    if not text.startswith(_ALPACA_HEAD) or _ALPACA_TAIL not in text:
        return None
    question, _, response = text[len(_ALPACA_HEAD) :].partition(_ALPACA_TAIL)
    return question, response
