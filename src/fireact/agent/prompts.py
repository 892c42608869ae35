"""Prompt texts of the agent: the few-shot files, the alpaca template, the Reflexion texts.

Owns every fixed string a model reads, and how each format builds its prompt head:

* ``fewshot``: the prompt file + question + ``"\\n"``; the trajectory so far follows, and each
  ReAct call ends with ``"Thought:"``. Files come from ``resources/prompts/fireact``
  (``react_<task>_google``, ``cot_<task>``, ``io_<task>``), or a user file. Every file is
  normalised to end with exactly one blank line, so that the question never runs into the last
  example (two of the shipped files end without a newline).
* ``wiki`` style (Wikipedia-like ``search[entity]``/``lookup[keyword]`` tools): ReAct's
  ``webthink_simple6`` examples converted to our unnumbered format (``Thought 2:`` →
  ``Thought:``, ``Search[`` → ``search[``, no ``Question:`` label, a blank line between examples,
  ``Observation: Episode finished, reward = 1`` after each finish), under our own instruction.
* ``alpaca``: `fireact.trajectory.ALPACA_TEMPLATE` with the question; no examples.
* ``chat``: the question is the first user message.

Shipped files are read once per process (cached); a user's file at each run.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from fireact.errors import FireactError
from fireact.files import read_text
from fireact.resources import resource
from fireact.trajectory import ALPACA_TEMPLATE as ALPACA_TEMPLATE  # its home; read from here too
from fireact.trajectory import finish_observation, render_observation

WIKI_INSTRUCTION = (
    "Answer the question by alternating Thought, Action and Observation steps. In a Thought, "
    "reason about what you know so far and what to do next. An Action is one of:\n"
    "(1) search[entity]: open the Wikipedia page of the entity and read its first sentences; "
    "if there is no such page, a list of similar titles is returned.\n"
    "(2) lookup[keyword]: the next sentence of the open page that contains the keyword.\n"
    "(3) finish[answer]: give the answer and end the task.\n"
    "Examples follow.\n\n"
)

REFLECTION_PROMPT = (
    "You are an agent that improves by reflecting on its mistakes. Below is a question and "
    "your previous attempt to answer it with interleaving Thought, Action and Observation "
    "steps. The attempt failed: the answer was wrong, or you ran out of steps. In a few "
    "sentences, diagnose what most likely went wrong and write a concise plan that avoids the "
    "same failure. Do not give the answer itself.\n\n"
    "Question: {question}\n{trajectory}\nReflection:"
)

REFLECTIONS_HEADER = (
    "You have tried to answer the following question before and failed. The reflections below "
    "give a plan to avoid failing in the same way; use them to improve your strategy.\n"
    "Reflections:\n"
)

KINDS = ("react", "cot", "io")
PROMPT_TASKS = ("hotpotqa", "strategyqa", "mmlu")


def normalise(text: str) -> str:
    """A prompt head that ends in exactly one blank line."""
    return text.rstrip() + "\n\n"


@lru_cache(maxsize=32)
def fewshot_prompt(kind: str, prompt_task: str, style: str = "google") -> str:
    """The shipped few-shot prompt of a method kind (react/cot/io) for a task family."""
    if kind not in KINDS:
        raise FireactError(f"unknown prompt kind {kind!r}: use one of {', '.join(KINDS)}")
    if prompt_task not in PROMPT_TASKS:
        raise FireactError(f"no FireAct prompts for task family {prompt_task!r}")
    if kind == "react" and style == "wiki":
        if prompt_task != "hotpotqa":
            raise FireactError(
                f"tool_style 'wiki': ReAct's Wikipedia prompt exists for hotpotqa only, not "
                f"{prompt_task}; use tool_style google or give your own prompt file (prompt)"
            )
        return wiki_prompt()
    name = f"react_{prompt_task}_google.txt" if kind == "react" else f"{kind}_{prompt_task}.txt"
    return normalise(read_text(resource("prompts", "fireact", name)))


def user_prompt(path: str) -> str:
    """A user's few-shot prompt file (examples in our Thought/Action/Observation format); read
    at each call, so that a run sees the file as it is now."""
    text = read_text(Path(path))
    if not text.strip():
        raise FireactError(f"prompt: {path} is empty; give a few-shot prompt file")
    return normalise(text)


@lru_cache(maxsize=1)
def wiki_prompt() -> str:
    """ReAct's ``webthink_simple6`` examples in our format, under `WIKI_INSTRUCTION`."""
    path = resource("prompts", "react", "prompts_naive.json")
    examples = json.loads(read_text(path))["webthink_simple6"]
    lines = []
    for line in examples.strip().splitlines():
        line = re.sub(r"^(Thought|Action|Observation) \d+:", r"\1:", line.rstrip())
        line = re.sub(r"^Action: (Search|Lookup|Finish)\[", _lower_action, line)
        if line.startswith("Question: "):
            lines += ["", line.removeprefix("Question: ")]
            continue
        lines.append(line)
        if line.startswith("Action: finish["):
            lines.append(render_observation(finish_observation("1")))
    return normalise(WIKI_INSTRUCTION + "\n".join(lines).strip())


def _lower_action(match: re.Match[str]) -> str:
    return f"Action: {match.group(1).lower()}["


def reflections_block(reflections: list[str]) -> str:
    """The text put before the question on a Reflexion retry (empty without reflections)."""
    if not reflections:
        return ""
    return REFLECTIONS_HEADER + "".join(f"- {r}\n" for r in reflections) + "\n"
