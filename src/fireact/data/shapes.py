"""FireAct's shapes of fine-tuning data: an episode's trajectory → blocks → alpaca / chat text.

Owns the per-method rules over a trajectory's blocks (`fireact.trajectory.blocks`, read with
``Answer:`` blocks) and the two renderings. Everything is built from an episode's ``question``
and ``trajectory`` text (and, for Reflexion, its ``attempts``), never from its ``messages``. An
``Answer: x`` block (CoT / IO text) becomes ``Action: finish[x]`` followed, unless an observation
is already there, by the finish observation.

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
  tasks print it: the registered task's ``reward_text`` (``True`` / ``False`` for hotpotqa and
  bamboogle, ``1`` / ``0`` for strategyqa, mmlu and tableqa; a plug-in task's own rule); an
  unregistered task's reward is kept as written. The converter rewrites what the run wrote.

Output shapes, byte for byte those of FireAct's files:

* alpaca ``output``: ``"Thought: ...\\nAction: ...\\nObservation: ...\\n..."`` — one line per
  block, each ending in ``\\n`` (but the last of a cot / io output);
* chat messages: the question as a user turn, the blocks up to an observation as one assistant
  turn (``"Thought: ...\\nAction: ..."``), each observation as a user turn ``"Observation: ..."``
  (so a finished episode ends with the ``Episode finished`` turn).
"""

from __future__ import annotations

import re
from typing import Any

from fireact import trajectory
from fireact.data.records import Source, reflexion_tries, require_text
from fireact.trajectory import (
    ACTION,
    ANSWER,
    FINISHED,
    OBSERVATION,
    THOUGHT,
    Block,
    finish_observation,
)

KNOWN_TASKS = ("hotpotqa", "bamboogle", "strategyqa", "mmlu")  # the tasks FireAct's files hold
ANSWER_METHODS = ("cot", "io")  # one step, FireAct's "reward = 1 / 0", no final newline in alpaca

_REWARD = re.compile(rf"{FINISHED}, reward = (True|False|1|0)")


def parse_blocks(text: str) -> list[Block]:
    """The trajectory's blocks, ``Answer:`` ones included (the final newline(s) are not part of
    the last one); a blank text has none."""
    return trajectory.blocks(text, answers=True) if text.strip() else []


def normalise_blocks(blocks: list[Block], em: bool) -> list[Block]:
    """Rewrite ``Answer: x`` blocks as ``Action: finish[x]`` (+ the finish observation)."""
    out: list[Block] = []
    for i, block in enumerate(blocks):
        if block.kind != ANSWER:
            out.append(block)
            continue
        out.append(Block(ACTION, f"finish[{block.text.strip()}]"))
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if following is None or following.kind != OBSERVATION:
            out.append(Block(OBSERVATION, finish_observation(str(em))))
    return out


def reward_word(success: bool, method: str, task: str) -> str | None:
    """FireAct's text for a finish reward: ``1``/``0`` for cot and io, else the registered task's
    `reward_text` (the task registry's rule, plug-ins included); None (keep what is written) for
    a task that is not registered."""
    if method in ANSWER_METHODS:
        return str(int(success))
    from fireact.tasks import TASK_REGISTRY  # the registry loads plug-ins: only when needed

    spec = TASK_REGISTRY.find(task)
    return spec.reward_text(success) if spec is not None else None


def fireact_rewards(blocks: list[Block], method: str, task: str) -> list[Block]:
    """Each ``Episode finished, reward = <True|False|1|0>`` observation in FireAct's words."""
    out: list[Block] = []
    for block in blocks:
        match = _REWARD.fullmatch(block.text) if block.kind == OBSERVATION else None
        word = reward_word(match.group(1) in ("True", "1"), method, task) if match else None
        out.append(Block(OBSERVATION, finish_observation(word)) if word else block)
    return out


def without_finish(blocks: list[Block]) -> list[Block]:
    """A failed try's blocks less its final finish step (thought, action, finish observation)."""
    if not blocks or blocks[-1].kind != OBSERVATION or not blocks[-1].text.startswith(FINISHED):
        return blocks
    start = len(blocks) - 1
    if start > 0 and blocks[start - 1].kind == ACTION:
        start -= 1
        if start > 0 and blocks[start - 1].kind == THOUGHT:
            start -= 1
    return blocks[:start]


def with_reflection(reflection: str, blocks: list[Block]) -> list[Block]:
    """The blocks of a try with the reflection before it inline: its first thought becomes
    ``<reflection> <thought>`` (a try that starts without a thought gets one of its own)."""
    reflection = reflection.strip()
    if not reflection:
        return blocks
    if blocks and blocks[0].kind == THOUGHT:
        text = f"{reflection} {blocks[0].text}" if blocks[0].text else reflection
        return [Block(THOUGHT, text), *blocks[1:]]
    return [Block(THOUGHT, reflection), *blocks]


def episode_blocks(
    source: Source, record: dict[str, Any], method: str, task: str, success: bool
) -> list[Block]:
    """The blocks of one episode in FireAct's shape for its method (see the module doc)."""
    out: list[Block] = []
    reflection = ""
    if method == "reflexion":
        for trajectory, written_after in reflexion_tries(source, record):
            out += with_reflection(reflection, without_finish(parse_blocks(trajectory)))
            reflection = written_after
    last = normalise_blocks(parse_blocks(require_text(source, record, "trajectory")), success)
    if last:  # a try that wrote nothing (an error) leaves its reflection out
        out += with_reflection(reflection, last)
    return fireact_rewards(out, method, task)


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
        if block.kind != OBSERVATION:
            pending.append(block.render())
            continue
        if pending:
            messages.append({"role": "assistant", "content": "\n".join(pending)})
            pending = []
        messages.append({"role": "user", "content": block.render()})
    if pending:
        messages.append({"role": "assistant", "content": "\n".join(pending)})
    return messages
