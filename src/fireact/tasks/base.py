"""What a task is: examples with stable ids, a scorer, and the paper's episode selection."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fireact.errors import FireactError
from fireact.tasks import metrics

Answer = str | bool | None


@dataclass(frozen=True)
class Example:
    """One question of a task: a stable id, the question text the agent sees, the gold answer."""

    id: str
    question: str
    answer: Answer


@dataclass(frozen=True)
class Score:
    """The score of one prediction: exact match (the paper's reward) and token F1."""

    em: bool
    f1: float


def score_qa(prediction: str, gold: Answer) -> Score:
    """HotpotQA / Bamboogle: EM and F1 on SQuAD-normalised strings."""
    gold_text = "" if gold is None else str(gold)
    return Score(metrics.exact_match(prediction, gold_text), metrics.f1(prediction, gold_text))


def score_strategyqa(prediction: str, gold: Answer) -> Score:
    """StrategyQA: the yes/no prefix rule; F1 equals EM. A gold given as text ("yes"/"no",
    "true"/"false", as some files spell it) counts by its meaning, not by being non-empty."""
    if isinstance(gold, str):
        gold = gold.strip().lower() in ("yes", "true")
    ok = metrics.strategyqa_correct(prediction, bool(gold))
    return Score(ok, float(ok))


def score_mmlu(prediction: str, gold: Answer) -> Score:
    """MMLU: the answer-letter prefix rule; F1 equals EM."""
    ok = metrics.mmlu_correct(prediction, str(gold))
    return Score(ok, float(ok))


@dataclass(frozen=True)
class Task:
    """A loaded split of a task: its examples and how to score a prediction against gold."""

    name: str
    split: str
    examples: Sequence[Example]
    scorer: Callable[[str, Answer], Score]
    prompt_task: str  # which FireAct prompt family this task uses (hotpotqa/strategyqa/mmlu)
    source: str = ""  # the file or folder the examples came from

    def reward_text(self, em: bool) -> str:
        """How the final observation writes the reward, as FireAct's tasks return it: a bool
        for the QA tasks ("True"/"False"), an int for StrategyQA and MMLU ("1"/"0")."""
        if self.prompt_task in ("strategyqa", "mmlu"):
            return str(int(em))
        return str(em)

    def score(self, prediction: str, gold: Answer) -> Score:
        """Score one prediction against one gold answer; no gold (a test split) scores 0."""
        if gold is None:
            return Score(False, 0.0)
        return self.scorer(prediction, gold)

    def select(
        self, start: int = 0, end: int | None = None, shuffle: bool = False
    ) -> list[Example]:
        """The paper's episode selection (see `select_indices`)."""
        return [self.examples[i] for i in select_indices(len(self.examples), start, end, shuffle)]


def select_indices(
    n: int, start: int = 0, end: int | None = None, shuffle: bool = False
) -> list[int]:
    """Indices of the episodes to run, exactly as the paper picks them.

    With ``shuffle`` (the CLI's ``--random``) all ``n`` indices are shuffled by
    ``random.Random(233)``, then ``[start:end]`` is taken. ``end=None`` means ``n``.
    """
    end = n if end is None else end
    if start < 0 or end < 0:
        raise FireactError(f"--start {start} / --end {end}: must not be negative")
    if start >= end:
        raise FireactError(f"--start {start} must be smaller than --end {end}")
    if end > n:
        raise FireactError(f"--end {end} is beyond the split, which has {n} examples")
    indices = list(range(n))
    if shuffle:
        random.Random(233).shuffle(indices)
    return indices[start:end]


def require(record: dict[str, Any], field: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``record[field]`` checked for presence and type; the error names `where` and the field."""
    if not isinstance(record, dict):
        raise FireactError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if field not in record:
        raise FireactError(f"{where}: missing field '{field}'")
    value = record[field]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise FireactError(
            f"{where}: field '{field}' should be {names}, got {type(value).__name__}"
        )
    return value
