"""fireact-toy: a fireact plug-in with one task, one tool and one model backend.

Declared in pyproject.toml under the entry-point groups ``fireact.tasks`` (``toy``),
``fireact.tools`` (``toy``) and ``fireact.llms`` (``echo``); fireact finds them on first use.
Each part has a rule no built-in has, so that a test can tell it was used: the scorer gives a
wrong answer F1 0.25, the reward reads "full marks" / "no marks", the tool answers ``define[...]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fireact.llm import Completion, LLMSpec, Prompt
from fireact.tasks import Answer, Score, TaskSpec, json_questions
from fireact.tools import ToolSpec, ToolState

HERE = Path(__file__).resolve().parent


def score_toy(prediction: str, gold: Answer) -> Score:
    """Exact match ignoring case and outer spaces; a wrong answer still earns F1 0.25."""
    em = prediction.strip().lower() == str(gold).strip().lower()
    return Score(em, 1.0 if em else 0.25)


def reward_toy(em: bool) -> str:
    """How the final observation writes the reward."""
    return "full marks" if em else "no marks"


TASK = TaskSpec(
    name="toy",
    read=json_questions("toy"),
    splits={"test": HERE / "questions.json"},
    scorer=score_toy,
    prompt_task="hotpotqa",
    reward_text=reward_toy,
    summary="two questions a dictionary answers",
)


class DictionaryTool:
    """``define[word]`` -> the word's entry in a small dictionary."""

    name = "toy"
    actions = frozenset({"define"})

    def __init__(self, words: Path | None = None) -> None:
        self.words = json.loads((words or HERE / "words.json").read_text(encoding="utf-8"))

    async def __call__(self, action: str, argument: str, state: ToolState) -> str:
        word = argument.strip().lower()
        entry = self.words.get(word)
        return (
            f"[toy dictionary] {word}: {entry}" if entry else f"[toy dictionary] no entry {word!r}"
        )

    async def aclose(self) -> None:
        """Nothing to release."""


TOOL = ToolSpec(
    name="toy",
    factory=DictionaryTool,
    actions=frozenset({"define"}),
    style="google",
    settings=("words",),
    summary="a toy dictionary: define[word]",
)


class EchoLLM:
    """A model that always answers ``Action: finish[ANSWER]``."""

    def __init__(self, answer: str) -> None:
        self.name = f"echo:{answer}"
        self.answer = answer

    async def complete(
        self,
        prompt: Prompt,
        *,
        stop: list[str] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        key: str | None = None,
    ) -> Completion:
        return Completion(f" I know this.\nAction: finish[{self.answer}]")

    async def aclose(self) -> None:
        """Nothing to release."""


def build_echo(spec: str, target: str, **options: Any) -> EchoLLM:
    """``echo:ANSWER`` (the whole spec is `spec`, the part after ``echo:`` is `target`)."""
    return EchoLLM(target, **options)


LLM = LLMSpec(
    prefix="echo",
    factory=build_echo,
    syntax="echo:ANSWER",
    summary="always answers ANSWER",
)
